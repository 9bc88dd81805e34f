// Requests delivered to this client: their bodies, their answers, and the
// serve loop with push credit (docs/PROTOCOL.md section 20.3).

import type { Handler, IncomingRequest } from './api.js';
import { BodySource, Credit, InboundBody, concat, pumpChunks, readAll } from './body.js';
import type { Conn } from './conn.js';
import { SocketbusError } from './errors.js';
import { formatUUID, idKey } from './uuid.js';
import {
  CodeRemote, FlagCredit, FlagReceive, FlagResponse, TypeChunk, TypeEnd, TypeError, TypeStart, WireError,
  checkAppCode, creditPayload, maxWholeResponse, noHeaders, parseCredit, pushedCredit, streamWindow, type Header,
} from './wire.js';
import { serverError } from './outgoing.js';
import { encodeFields, toHeaders } from './headers.js';

/** InRequest is a request this client holds as a receiver. */
export class InRequest implements IncomingRequest {
  readonly id: string;
  readonly from: string;
  readonly key: string;
  readonly headers: Headers;
  readonly responseHeaders = new Headers();
  readonly body: ReadableStream<Uint8Array>;
  private readonly ac = new AbortController();
  private readonly in: InboundBody | undefined;
  private readonly credit = new Credit(streamWindow);
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** answered: respond or fail was called. */
  answered = false;
  /** finished: nothing more is sent for it. */
  finished = false;

  /**
   * published: a publish delivered it (start|receive|publish), and wants
   * no answer: respond and fail send an empty response, which tells the
   * server it was taken, and so does the serve loop when the handler
   * answers nothing.
   */
  constructor(private readonly conn: Conn, private readonly rid: Uint8Array, h: Header, fields: [string, string][],
    whole: Uint8Array | undefined, private readonly onFinish: (r: InRequest) => void, readonly published = false) {
    this.headers = toHeaders(fields);
    this.id = formatUUID(rid);
    this.from = formatUUID(h.clientId);
    this.key = idKey(rid);
    if (whole !== undefined) {
      const b = whole;
      this.body = new ReadableStream<Uint8Array>({ start(c) { if (b.length) c.enqueue(b); c.close(); } });
    } else {
      // A pushed request: 16 KiB of implicit credit; taking it grants the
      // rest of a window.
      const takeGrant = conn.window - pushedCredit;
      this.in = new InboundBody(pushedCredit,
        (n) => { if (!this.finished && !conn.closed) conn.frame(conn.header(TypeChunk, FlagReceive | FlagCredit, rid), creditPayload(n)); },
        undefined, conn.window);
      this.body = this.in.stream;
      this.in.granted(takeGrant);
      conn.frame(conn.header(TypeChunk, FlagReceive | FlagCredit, rid), creditPayload(takeGrant));
    }
    if (h.timeout > 0) {
      this.timer = setTimeout(() => this.end(new SocketbusError('timeout', 'socketbus: timeout: the request\'s time ran out')), h.timeout);
    }
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  bytes(): Promise<Uint8Array> {
    return readAll(this.body);
  }

  /** handle takes a frame the server sent for this request. */
  handle(h: Header, payload: Uint8Array): void {
    if (h.flags === (FlagResponse | FlagCredit)) {
      this.credit.add(parseCredit(payload));
      return;
    }
    if (h.flags === FlagResponse && h.type === TypeError) {
      this.end(serverError(h, payload)); // our response was refused (too_large)
      return;
    }
    if (h.flags !== FlagReceive) throw new WireError(1, 'an unexpected frame for a held request');
    switch (h.type) {
      case TypeChunk:
        if (!this.in) throw new WireError(1, 'a chunk for a whole request');
        if (!this.in.push(payload)) throw new WireError(1, 'a request body beyond the window');
        return;
      case TypeEnd:
        if (!this.in) throw new WireError(1, 'an end for a whole request');
        this.in.end();
        return;
      case TypeError:
        this.end(serverError(h, payload));
        return;
      case TypeStart:
        throw new WireError(1, 'a request delivered twice');
    }
  }

  /** end ends the request from outside (the sender's error, a timeout, the connection lost). */
  end(err: SocketbusError): void {
    if (this.finished) return;
    this.in?.fail(err);
    this.ac.abort(err);
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.credit.stop(this.signal.reason ?? new SocketbusError('closed', 'socketbus: the request has ended'));
    this.onFinish(this);
  }

  private check(): void {
    if (this.signal.aborted) throw this.signal.reason;
    if (this.answered) throw new SocketbusError('invalid', 'socketbus: the request was already answered');
    if (this.finished || this.conn.closed) throw new SocketbusError('disconnected', 'socketbus: the request has ended');
  }

  async respond(body: Uint8Array | ReadableStream<Uint8Array>): Promise<void> {
    this.check();
    if (this.published) {
      if (body instanceof ReadableStream) body.cancel().catch(() => {});
      this.respondEmpty();
      return;
    }
    const block = this.responseBlock(); // checked before anything is sent
    this.answered = true;
    const conn = this.conn;
    const src = new BodySource(body);
    // A whole response's block and body together fit one frame.
    const pre = await src.prefix(maxWholeResponse - block.length);
    if (this.finished) {
      src.cancel(this.signal.reason);
      throw this.signal.reason ?? new SocketbusError('disconnected', 'socketbus: the request has ended');
    }
    if (pre.done) {
      conn.frame(conn.header(TypeStart, FlagResponse, this.rid, 0, true), concat(pre.parts, pre.n), block);
      this.finish();
      return;
    }
    conn.frame(conn.header(TypeStart, FlagResponse, this.rid, 0, false), undefined, block);
    let seq = 1;
    try {
      await pumpChunks(pre.parts, src, this.credit, (b) => {
        if (!this.finished) conn.frame(conn.header(TypeChunk, FlagResponse, this.rid, seq++), b);
      });
    } catch (err) {
      if (this.finished) throw this.signal.reason ?? err;
      // The response body's reader failed: the requester gets a RemoteError.
      conn.frame(conn.header(TypeError, FlagResponse, this.rid, 0, true), conn.errorPayload(CodeRemote, `the response body failed: ${String(err)}`));
      this.finish();
      throw err;
    }
    if (this.finished) throw this.signal.reason;
    conn.frame(conn.header(TypeEnd, FlagResponse, this.rid, seq, true));
    this.finish();
  }

  /**
   * respondEmpty answers a published request: an empty whole response,
   * without headers (the server drops it; that it came says the request
   * was taken).
   */
  respondEmpty(): void {
    if (this.finished) return;
    this.answered = true;
    this.conn.frame(this.conn.header(TypeStart, FlagResponse, this.rid, 0, true), undefined, noHeaders);
    this.finish();
  }

  /** responseBlock is responseHeaders encoded: a bad header fails with "invalid". */
  private responseBlock(): Uint8Array {
    const fields: [string, string][] = [];
    this.responseHeaders.forEach((v, k) => { fields.push([k, v]); });
    return encodeFields(fields, 'response');
  }

  async fail(message: string, code?: string): Promise<void> {
    if (code !== undefined) {
      try {
        checkAppCode(code);
      } catch (e) {
        throw new SocketbusError('invalid', `socketbus: invalid error code: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    }
    if (this.finished) throw this.signal.reason ?? new SocketbusError('disconnected', 'socketbus: the request has ended');
    if (this.published) {
      this.respondEmpty(); // nobody reads the failure
      return;
    }
    if (this.answered && !this.finished) {
      // A response that is streaming: fail it part way (allowed, section 15.1).
    }
    // The failure carries the response headers set so far: a bad one fails
    // fail with "invalid" and nothing is sent (the serve loop then fails
    // the request without them).
    const block = this.responseBlock();
    this.failWith(message, code ?? '', block);
  }

  /** failPlain fails the request without its response headers: the serve loop's last resort. */
  failPlain(message: string): void {
    if (this.finished) return;
    if (this.published) {
      this.respondEmpty();
      return;
    }
    this.failWith(message, '', undefined);
  }

  private failWith(message: string, code: string, block: Uint8Array | undefined): void {
    this.answered = true;
    this.conn.frame(this.conn.header(TypeError, FlagResponse, this.rid, 0, true), this.conn.errorPayload(CodeRemote, message, code, block));
    this.finish();
  }
}

/** ServeState is the one serve loop of a client that uses push credit. */
export class ServeState {
  active = 0;
  private owed = 0;
  stopping = false;
  private stopAnswered = false;
  private readonly batch: number;
  readonly promise: Promise<void>;
  private resolve!: () => void;

  constructor(readonly handler: Handler, readonly concurrency: number, private readonly current: () => Conn | undefined) {
    this.batch = Math.max(1, Math.floor(concurrency / 8));
    this.promise = new Promise((resolve) => { this.resolve = resolve; });
  }

  /** grantAll gives a new connection credit for every idle handler. */
  grantAll(conn: Conn): void {
    this.owed = 0;
    if (this.stopping) return; // a stopped serve grants nothing on a new connection
    const n = this.concurrency - this.active;
    if (n > 0) conn.frame(conn.header(TypeStart, FlagReceive, zero, 0, true), creditPayload(n));
  }

  /** run runs the handler for req and gives its unit of credit back. */
  async run(req: InRequest): Promise<void> {
    this.active++;
    try {
      await this.handler(req);
      if (!req.answered && !req.finished && req.published) {
        req.respondEmpty(); // no answer is wanted; this says it was taken
      } else if (!req.answered && !req.finished) {
        try { await req.fail('handler returned without answering'); } catch { req.failPlain('handler returned without answering'); }
      }
    } catch (e) {
      if (!req.finished) {
        const message = e instanceof Error ? e.message : String(e);
        try { await req.fail(message); } catch { req.failPlain(message); /* bad response headers, or ended meanwhile */ }
      }
    }
    this.active--;
    const conn = this.current();
    if (!this.stopping && conn && !conn.closed) {
      if (++this.owed >= this.batch) {
        conn.frame(conn.header(TypeStart, FlagReceive, zero, 0, true), creditPayload(this.owed));
        this.owed = 0;
      }
    }
    this.settle();
  }

  /** stop sends a stop: no more pushes once the server answers it. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    const conn = this.current();
    if (conn && !conn.closed) conn.frame(conn.header(TypeEnd, FlagReceive, zero, 0, true));
    else this.stopAnswered = true;
    this.settle();
  }

  /**
   * connectionLost: a stop sent on the lost connection will not be
   * answered, and nothing more is pushed on it.
   */
  connectionLost(): void {
    this.owed = 0;
    if (this.stopping) this.answered();
  }

  /** answered: the server answered the stop, or the connection is gone. */
  answered(): void {
    this.stopAnswered = true;
    this.settle();
  }

  private settle(): void {
    if (this.stopping && this.stopAnswered && this.active === 0) this.resolve();
  }
}

const zero = new Uint8Array(16);
