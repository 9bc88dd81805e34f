// A gather or publish this client sends (docs/PROTOCOL.md section 24): its
// body pumped within credit as a request's is, the announcements of its
// members, each member's reply stream with its own credit, and its end.

import type { Reply } from './api.js';
import { BodySource, Credit, concat, pumpChunks } from './body.js';
import type { Conn } from './conn.js';
import { RemoteError, SocketbusError } from './errors.js';
import { toHeaders } from './headers.js';
import { serverError } from './outgoing.js';
import { formatUUID, idKey, randomUUID } from './uuid.js';
import {
  CodeAborted, CodeCancelled, CodeTimeout, FlagAll, FlagCredit, FlagPublish, FlagRequest, FlagResponse, TypeChunk,
  TypeEnd, TypeError, TypeStart, WireError, initialRequestCredit, maxWholeRequest, noHeaders, parseAnnouncement,
  parseCount, parseCredit, parseHeaderBlock, replyCreditPayload, streamWindow, type Header,
} from './wire.js';

/**
 * How long a gather whose deadline passed waits for the server's word on
 * the members that have not answered (its timer fires at the same
 * deadline) before it times them out itself: the Go client's grace.
 */
const deadlineGrace = 2000;

/** A member's reply is granted credit each half window received, as a response is. */
const replyGrant = streamWindow / 2;

/** The longest reply kept when the server announces no body limit (the Go client's Call limit). */
const defaultReplyLimit = 64 << 20;

/** finished is the reason a finished gather's body pump stops. */
const finished = new Error('socketbus: gather finished');

/** replyAssembly is one member's reply while its stream comes in. */
interface ReplyAssembly {
  started: boolean;
  headers: Headers | undefined;
  parts: Uint8Array[];
  n: number;
  ungranted: number;
}

/**
 * OutGather is one gather or publish in flight, from gather until its end:
 * it hands replies out as they come (next) and settles done with the
 * publish's count.
 */
export class OutGather {
  readonly id = randomUUID();
  readonly key = idKey(this.id);
  conn: Conn | undefined;
  /** written: a frame of it was handed to a connection (a member may have it). */
  written = false;
  done = false;
  whole: Uint8Array | undefined;
  parts: Uint8Array[] = [];
  /** announced: the server named members (the gather was accepted). */
  private announced = false;
  private credit = new Credit(initialRequestCredit);
  private src: BodySource;
  private readonly body: Uint8Array | undefined;
  /** Members announced that have no outcome yet, by idKey. */
  private readonly open = new Map<string, ReplyAssembly>();
  /** Members whose reply this side ended (too large): their late frames are dropped. */
  private readonly dropped = new Set<string>();
  /** Outcomes not yet taken by next. */
  private readonly out: Reply[] = [];
  private wake: (() => void) | undefined;
  private err: unknown;
  private took = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private deadline = 0;
  private unlisten: (() => void) | undefined;

  constructor(body: Uint8Array | ReadableStream<Uint8Array>, readonly publish: boolean, timeout: number | undefined,
    signal: AbortSignal | undefined, private readonly onFinish: (g: OutGather) => void,
    private readonly block: Uint8Array = noHeaders) {
    this.src = new BodySource(body);
    this.body = body instanceof Uint8Array ? body : undefined;
    if (timeout !== undefined && timeout > 0) {
      this.deadline = Date.now() + timeout;
      this.timer = setTimeout(() => this.deadlinePassed(timeout), timeout);
    }
    if (signal) {
      const onAbort = () => this.fail(new SocketbusError('cancelled', 'socketbus: cancelled: the caller aborted the gather',
        { cause: signal.reason }), CodeCancelled, 'the sender cancelled the request');
      signal.addEventListener('abort', onAbort, { once: true });
      this.unlisten = () => signal.removeEventListener('abort', onAbort);
    }
  }

  /** flags are the start's, the announcements' and the end's flags. */
  private get flags(): number {
    return FlagRequest | FlagAll | (this.publish ? FlagPublish : 0);
  }

  /** prepare reads the body's first bytes: a body that ends within them goes whole. */
  async prepare(): Promise<void> {
    const pre = await this.src.prefix(maxWholeRequest);
    if (pre.done) this.whole = concat(pre.parts, pre.n);
    else this.parts = pre.parts;
  }

  /** begin writes the gather on conn: whole, or a start and its body pumped within credit. */
  begin(conn: Conn): void {
    if (this.done) return;
    this.conn = conn;
    this.written = true;
    const timeout = this.deadline ? Math.max(1, Math.ceil(this.deadline - Date.now())) : 0;
    if (this.whole !== undefined) {
      conn.frame(conn.header(TypeStart, this.flags, this.id, 0, true, timeout), this.whole, this.block);
      return;
    }
    conn.frame(conn.header(TypeStart, this.flags, this.id, 0, false, timeout), undefined, this.block);
    let seq = 1;
    const live = () => !this.done && this.conn === conn && !conn.closed;
    pumpChunks(this.parts, this.src, this.credit, (b) => {
      if (live()) conn.frame(conn.header(TypeChunk, FlagRequest, this.id, seq++), b);
    }).then(() => {
      if (live()) conn.frame(conn.header(TypeEnd, FlagRequest, this.id, seq++, true));
    }, (err: unknown) => {
      if (err === finished || this.done) return;
      this.fail(new SocketbusError('aborted', `socketbus: aborted: the gather's body failed: ${String(err)}`, { cause: err }),
        CodeAborted, `the request body failed: ${String(err)}`);
    });
  }

  /** handle takes a frame the server sent for this gather. */
  handle(h: Header, payload: Uint8Array): void {
    if (this.done) return;
    switch (h.flags) {
      case FlagRequest:
        if (h.type === TypeStart && payload.length === 4) this.credit.add(parseCredit(payload));
        if (h.type === TypeError) this.end(serverError(h, payload)); // refused: no_peers, limit...
        return;
      case FlagRequest | FlagCredit:
        this.credit.add(parseCredit(payload));
        return;
      case FlagRequest | FlagAll:
      case FlagRequest | FlagAll | FlagPublish:
        if (h.flags !== this.flags) throw new WireError(1, `a ${this.publish ? 'publish' : 'gather'} answered with flags 0x${h.flags.toString(16)}`);
        if (h.type === TypeStart) this.announce(parseAnnouncement(payload));
        else this.ended(parseCount(payload));
        return;
      case FlagResponse | FlagAll:
        this.reply(h, payload);
        return;
    }
    throw new WireError(1, `a frame with flags 0x${h.flags.toString(16)} for a gather`);
  }

  private announce(ids: Uint8Array[]): void {
    this.announced = true;
    for (const id of ids) {
      const k = idKey(id);
      if (this.open.has(k) || this.dropped.has(k)) throw new WireError(1, `member ${formatUUID(id)} announced twice`);
      this.open.set(k, { started: false, headers: undefined, parts: [], n: 0, ungranted: 0 });
    }
  }

  /** ended takes the server's end of the gather: every member has its outcome. */
  private ended(count: number): void {
    if (this.open.size > 0 && !this.publish) throw new WireError(1, `a gather ended with ${this.open.size} members still to reply`);
    this.took = count;
    this.finish();
  }

  /** reply takes one frame of a member's reply stream; the client ID field names the member. */
  private reply(h: Header, payload: Uint8Array): void {
    const member = h.clientId;
    const k = idKey(member);
    const ra = this.open.get(k);
    if (!ra) {
      if (this.dropped.has(k)) return; // in flight when this side ended it
      throw new WireError(1, `a reply from ${formatUUID(member)}, which is not a member of the gather or has replied`);
    }
    const from = formatUUID(member);
    switch (h.type) {
      case TypeError: {
        const e = serverError(h, payload);
        this.outcome(k, { from, headers: e instanceof RemoteError ? e.headers : new Headers(), body: new Uint8Array(0), error: e });
        return;
      }
      case TypeStart: {
        if (ra.started || h.seq !== 0) throw new WireError(1, `a second start of ${from}'s reply`);
        const { fields, end } = parseHeaderBlock(payload);
        ra.started = true;
        ra.headers = toHeaders(fields);
        if (h.final) {
          this.outcome(k, { from, headers: ra.headers, body: payload.slice(end), error: undefined });
        } else if (end !== payload.length) {
          throw new WireError(1, 'a reply start with bytes after its header block');
        }
        return;
      }
    }
    if (!ra.started) throw new WireError(1, `a reply ${h.type === TypeEnd ? 'end' : 'chunk'} from ${from} before its start`);
    if (h.type === TypeEnd) {
      this.outcome(k, { from, headers: ra.headers!, body: concat(ra.parts, ra.n), error: undefined });
      return;
    }
    const limit = this.conn?.maxMessageBytes || defaultReplyLimit;
    if (ra.n + payload.length > limit) {
      // Past what a call would take: the member's reply fails here, and it
      // gets no more credit (the server ends it at the deadline).
      this.dropped.add(k);
      this.outcome(k, { from, headers: ra.headers!, body: new Uint8Array(0),
        error: new SocketbusError('too_large', `socketbus: too_large: a reply over ${limit} bytes`) });
      return;
    }
    if (ra.ungranted + payload.length > streamWindow) throw new WireError(1, `a reply from ${from} beyond its window`);
    ra.parts.push(payload);
    ra.n += payload.length;
    ra.ungranted += payload.length;
    if (ra.ungranted >= replyGrant) {
      const conn = this.conn!;
      if (!conn.closed) conn.frame(conn.header(TypeChunk, FlagResponse | FlagCredit | FlagAll, this.id), replyCreditPayload(ra.ungranted, member));
      ra.ungranted = 0;
    }
  }

  /** outcome records member k's reply and wakes the reader. */
  private outcome(k: string, r: Reply): void {
    this.open.delete(k);
    this.out.push(r);
    this.wake?.();
  }

  /**
   * deadlinePassed: the server's timer fires at the same deadline and ends
   * every member still working with timeout. Say so too, then give its
   * word a grace before timing the open members out here.
   */
  private deadlinePassed(timeout: number): void {
    if (this.done) return;
    const conn = this.conn;
    if (!this.written || !conn || conn.closed) {
      this.end(new SocketbusError('timeout', `socketbus: timeout: the gather's ${timeout} ms passed`));
      return;
    }
    this.stopBody();
    conn.frame(conn.header(TypeError, FlagRequest, this.id, 0, true), conn.errorPayload(CodeTimeout, "the sender's deadline passed"));
    this.timer = setTimeout(() => {
      if (this.done) return;
      for (const k of [...this.open.keys()]) {
        this.outcome(k, { from: formatUUID(hexBytes(k)), headers: new Headers(), body: new Uint8Array(0),
          error: new SocketbusError('timeout', `socketbus: timeout: the gather's ${timeout} ms passed`) });
      }
      this.finish();
    }, deadlineGrace);
  }

  /**
   * next waits for the next reply: undefined once the gather has ended
   * and every reply was taken. It throws the gather's failure (refused,
   * cancelled, disconnected) after the replies that came before it.
   */
  async next(): Promise<Reply | undefined> {
    for (;;) {
      const r = this.out.shift();
      if (r !== undefined) return r;
      if (this.err !== undefined) throw this.err;
      if (this.done) return undefined;
      await new Promise<void>((resolve) => { this.wake = resolve; });
      this.wake = undefined;
    }
  }

  /** count resolves with a publish's count once the gather has ended. */
  async count(): Promise<number> {
    while (await this.next() !== undefined) { /* a publish has no replies */ }
    return this.took;
  }

  /** end fails the gather with err, which came from the server or the connection. */
  end(err: unknown): void {
    if (this.done) return;
    this.err = err;
    this.finish();
  }

  /**
   * fail ends the gather from this side: it tells the server (code,
   * message), which ends every member's part, if the gather was written on
   * a live connection, and fails the caller with err (undefined: the
   * caller stopped reading; nothing more is handed out).
   */
  fail(err: unknown, code?: number, message = ''): void {
    if (this.done) return;
    const conn = this.conn;
    if (code !== undefined && this.written && conn && !conn.closed) {
      conn.frame(conn.header(TypeError, FlagRequest, this.id, 0, true), conn.errorPayload(code, message));
    }
    if (err === undefined) this.finish();
    else this.end(err);
  }

  private stopBody(): void {
    this.credit.stop(finished);
    this.src.cancel(finished);
  }

  private finish(): void {
    this.done = true;
    clearTimeout(this.timer);
    this.unlisten?.();
    this.stopBody();
    this.wake?.();
    this.onFinish(this);
  }

  /**
   * replayable says the gather can be sent again from its start: its body
   * is whole or a Uint8Array, and the server named no member.
   */
  get replayable(): boolean {
    return !this.announced && (this.whole !== undefined || this.body !== undefined);
  }

  /** rewind makes the gather ready to be written again, same ID: a draining server refused it. */
  rewind(): void {
    this.credit.stop(finished);
    this.conn = undefined;
    this.written = false;
    this.credit = new Credit(initialRequestCredit);
    if (this.whole === undefined) {
      this.src = new BodySource(this.body!);
      this.parts = [];
    }
  }
}

/** hexBytes is the inverse of idKey. */
function hexBytes(k: string): Uint8Array {
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = parseInt(k.slice(2 * i, 2 * i + 2), 16);
  return b;
}
