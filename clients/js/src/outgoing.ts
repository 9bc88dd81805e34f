// A request this client sends: its body pumped within credit, its response
// streamed back, its cancel, timeout and abort.

import type { ResponseStream } from './api.js';
import { BodySource, Credit, InboundBody, concat, pumpChunks } from './body.js';
import type { Conn } from './conn.js';
import { RemoteError, SocketbusError } from './errors.js';
import { formatUUID, idKey, randomUUID } from './uuid.js';
import {
  CodeAborted, CodeCancelled, CodeRemote, CodeTimeout, FlagCredit, FlagRequest, FlagResponse, TypeChunk, TypeEnd,
  TypeError, TypeStart, WireError, codeNames, creditPayload, initialRequestCredit, maxWholeRequest,
  parseCredit, parseErrorVersion, parseHeaderBlock, noHeaders, streamWindow, type Header,
} from './wire.js';
import { toHeaders } from './headers.js';

/** done is the reason a finished call's body pump stops. */
const finished = new Error('socketbus: request finished');

/** serverError turns an error frame's payload into the client's error. */
export function serverError(h: Header, payload: Uint8Array): SocketbusError {
  const e = parseErrorVersion(h.version, payload);
  if (e.code === CodeRemote) return new RemoteError(e.message, e.appCode || undefined, e.headers.length ? toHeaders(e.headers) : undefined);
  const name = codeNames[e.code] ?? 'protocol';
  return new SocketbusError(name, `socketbus: ${name}: ${e.message}`);
}

/** OutCall is one request in flight, from send until its response ends. */
export class OutCall {
  readonly id = randomUUID();
  readonly key = idKey(this.id);
  conn: Conn | undefined;
  /** written: a frame of it was handed to a connection (a handler may have it). */
  written = false;
  done = false;
  /** whole is the body when it fits one frame (and can be sent again). */
  whole: Uint8Array | undefined;
  parts: Uint8Array[] = [];
  private credit = new Credit(initialRequestCredit);
  private resp: InboundBody | undefined;
  private responded = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private deadline = 0;
  private unlisten: (() => void) | undefined;
  readonly promise: Promise<ResponseStream>;
  private resolve!: (r: ResponseStream) => void;
  private reject!: (e: unknown) => void;

  /** src reads the body; body is kept when it is a Uint8Array, to send it again. */
  private src: BodySource;
  private readonly body: Uint8Array | undefined;

  /**
   * block is the request's header block, checked and encoded before
   * anything is sent: the shared 2-byte empty block when there are none.
   */
  constructor(body: Uint8Array | ReadableStream<Uint8Array>, timeout: number | undefined, signal: AbortSignal | undefined,
    private readonly onFinish: (c: OutCall) => void, private readonly block: Uint8Array = noHeaders) {
    this.src = new BodySource(body);
    this.body = body instanceof Uint8Array ? body : undefined;
    this.promise = new Promise((resolve, reject) => { this.resolve = resolve; this.reject = reject; });
    if (timeout !== undefined && timeout > 0) {
      this.deadline = Date.now() + timeout;
      this.timer = setTimeout(() => this.fail(
        new SocketbusError('timeout', `socketbus: timeout: the request's ${timeout} ms passed`), CodeTimeout,
        "the sender's deadline passed"), timeout);
    }
    if (signal) {
      const onAbort = () => this.fail(new SocketbusError('cancelled', 'socketbus: cancelled: the caller aborted the request',
        { cause: signal.reason }), CodeCancelled, 'the sender cancelled the request');
      signal.addEventListener('abort', onAbort, { once: true });
      this.unlisten = () => signal.removeEventListener('abort', onAbort);
    }
  }

  /** begin writes the request on conn: whole, or a start and its body pumped within credit. */
  begin(conn: Conn): void {
    if (this.done) return;
    this.conn = conn;
    this.written = true;
    const timeout = this.deadline ? Math.max(1, Math.ceil(this.deadline - Date.now())) : 0;
    if (this.whole !== undefined) {
      conn.frame(conn.header(TypeStart, FlagRequest, this.id, 0, true, timeout), this.whole, this.block);
      return;
    }
    conn.frame(conn.header(TypeStart, FlagRequest, this.id, 0, false, timeout), undefined, this.block);
    let seq = 1;
    const live = () => !this.done && this.conn === conn && !conn.closed;
    pumpChunks(this.parts, this.src, this.credit, (b) => {
      if (live()) conn.frame(conn.header(TypeChunk, FlagRequest, this.id, seq++), b);
    }).then(() => {
      if (live()) conn.frame(conn.header(TypeEnd, FlagRequest, this.id, seq++, true));
    }, (err: unknown) => {
      if (err === finished || this.done) return;
      // The body's reader failed: the body is incomplete.
      this.fail(new SocketbusError('aborted', `socketbus: aborted: the request body failed: ${String(err)}`, { cause: err }),
        CodeAborted, `the request body failed: ${String(err)}`);
    });
  }

  /** handle takes a frame the server sent for this request. */
  handle(h: Header, payload: Uint8Array): void {
    const conn = this.conn!;
    if (h.flags === FlagRequest) {
      if (h.type === TypeStart && payload.length === 4) this.credit.add(parseCredit(payload));
      if (h.type === TypeError) this.end(serverError(h, payload));
      return; // acknowledgements: informational
    }
    if (h.flags === (FlagRequest | FlagCredit)) {
      this.credit.add(parseCredit(payload));
      return;
    }
    // A response frame.
    switch (h.type) {
      case TypeStart: {
        if (this.responded) throw new WireError(1, 'a second response start');
        if (h.seq !== 0) throw new WireError(1, 'a response start with a sequence other than 0');
        this.responded = true;
        const from = formatUUID(h.clientId);
        const { fields, end } = parseHeaderBlock(payload);
        const headers = toHeaders(fields);
        if (h.final) {
          const body = payload.slice(end);
          this.resolve({
            headers, from,
            body: new ReadableStream<Uint8Array>({ start(c) { if (body.length) c.enqueue(body); c.close(); } }),
          });
          this.finish();
          return;
        }
        this.resp = new InboundBody(streamWindow,
          (n) => { if (!this.done && !conn.closed) conn.frame(conn.header(TypeChunk, FlagResponse | FlagCredit, this.id), creditPayload(n)); },
          () => this.fail(new SocketbusError('cancelled', 'socketbus: cancelled: the response body was cancelled'),
            CodeCancelled, 'the sender cancelled the request'), conn.window, true);
        if (end !== payload.length) throw new WireError(1, 'a response start with bytes after its header block');
        this.resolve({ headers, from, body: this.resp.stream });
        return;
      }
      case TypeChunk:
        if (!this.resp) throw new WireError(1, 'a response chunk before its start');
        if (!this.resp.push(payload)) throw new WireError(1, 'a response beyond the window');
        return;
      case TypeEnd:
        if (!this.resp) throw new WireError(1, 'a response end before its start');
        this.resp.end();
        this.finish();
        return;
      case TypeError:
        this.end(serverError(h, payload));
        return;
    }
  }

  /** end fails the call with err, which came from the server. */
  end(err: unknown): void {
    if (this.done) return;
    if (this.resp) this.resp.fail(err);
    else this.reject(err);
    this.finish();
  }

  /**
   * fail ends the call from this side: it tells the server (code, message)
   * if the request was written on a live connection, and fails the caller
   * with err.
   */
  fail(err: unknown, code?: number, message = ''): void {
    if (this.done) return;
    const conn = this.conn;
    if (code !== undefined && this.written && conn && !conn.closed) {
      conn.frame(conn.header(TypeError, FlagRequest, this.id, 0, true), conn.errorPayload(code, message));
    }
    this.end(err);
  }

  private finish(): void {
    this.done = true;
    clearTimeout(this.timer);
    this.unlisten?.();
    this.credit.stop(finished);
    this.src.cancel(finished);
    this.onFinish(this);
  }

  /**
   * replayable says the request can be sent again from its start: its body
   * is whole, or a Uint8Array, and no response has started.
   */
  get replayable(): boolean {
    return !this.responded && (this.whole !== undefined || this.body !== undefined);
  }

  /**
   * rewind makes the request ready to be written again, same ID, on another
   * connection: it was refused by a draining server, so no receiver saw it.
   */
  rewind(): void {
    this.credit.stop(finished); // ends the old body pump
    this.conn = undefined;
    this.written = false;
    this.credit = new Credit(initialRequestCredit);
    if (this.whole === undefined) {
      this.src = new BodySource(this.body!);
      this.parts = [];
    }
  }

  /** prepare reads the body's first bytes: a body that ends within them goes whole. */
  async prepare(): Promise<void> {
    const pre = await this.src.prefix(maxWholeRequest);
    if (pre.done) this.whole = concat(pre.parts, pre.n);
    else this.parts = pre.parts;
  }
}
