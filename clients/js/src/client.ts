// The client: one connection at a time to one of its servers, the tables of
// requests it sends and holds, frames routed to them, and reconnection by
// the Go client's rules (re-send only what no receiver can have seen).

import type { CallOptions, Client, ConnectOptions, Handler, Reply, ResponseStream, ServeOptions } from './api.js';
import { readAll } from './body.js';
import { Conn } from './conn.js';
import { SocketbusError } from './errors.js';
import { InRequest, ServeState } from './incoming.js';
import { OutGather } from './gather.js';
import { OutCall } from './outgoing.js';
import type { Dialer } from './transport.js';
import { encodeHeaders } from './headers.js';
import { formatUUID, idKey, parseUUID, randomUUID } from './uuid.js';
import {
  CodeCancelled, CodeReturned, CodeServerClosed, FlagAll, FlagCredit, FlagPublish, FlagReceive, FlagRequest, FlagResponse, TypeEnd,
  TypeError, TypeStart, WireError, isZero, parseErrorVersion, parseHeaderBlock, type Header,
} from './wire.js';

/** Outgoing is a request this client sends: a call, or a gather or publish. */
type Outgoing = OutCall | OutGather;

/** How long close waits for the server to answer a serve's stop. */
const closeWait = 2000;

/**
 * connectWith joins opts.channel on the first of opts.servers that
 * answers, dialing with dial.
 */
export async function connectWith(opts: ConnectOptions, dial: Dialer): Promise<Client> {
  if (!opts.servers || opts.servers.length === 0) throw new SocketbusError('invalid', 'socketbus: connect: no servers');
  const c = new BusClient(opts, dial);
  let last: unknown;
  for (let i = 0; i < opts.servers.length; i++) {
    try {
      await c.dial(i);
      return c;
    } catch (e) {
      last = e;
      if (e instanceof SocketbusError && (e.code === 'unauthorized' || e.code === 'unsupported' || e.code === 'conflict')) break;
    }
  }
  throw last;
}

class BusClient implements Client {
  readonly id: string;
  readonly channel: string;
  private readonly clientId: Uint8Array;
  private readonly channelId: Uint8Array;
  private conn: Conn | undefined;
  private serverIndex = 0;
  private closed = false;
  private reconnecting = false;
  /** Calls waiting for a connection (never written, or refused by a draining server). */
  private waiting: Outgoing[] = [];
  private calls = new Map<string, Outgoing>();
  private held = new Map<string, InRequest>();
  private serving: ServeState | undefined;

  constructor(private readonly opts: ConnectOptions, private readonly dialer: Dialer) {
    this.clientId = opts.clientId ? parseUUID(opts.clientId) : randomUUID();
    this.channelId = parseUUID(opts.channel);
    this.id = formatUUID(this.clientId);
    this.channel = formatUUID(this.channelId);
  }

  /** dial connects to servers[i] and makes it the client's connection. */
  async dial(i: number): Promise<void> {
    const addr = this.opts.servers[i]!;
    const t = await this.dialer(addr, this.opts.tls);
    const conn = await Conn.open(t, { clientId: this.clientId, channelId: this.channelId, token: this.opts.token },
      this.opts.connectTimeout ?? 10_000);
    if (this.closed) {
      conn.close();
      throw new SocketbusError('closed', 'socketbus: client closed');
    }
    this.serverIndex = i;
    this.conn = conn;
    conn.handler = (h, p) => this.route(conn, h, p);
    conn.onLost = (err) => this.lost(conn, err);
    this.serving?.grantAll(conn);
    const waiting = this.waiting;
    this.waiting = [];
    for (const call of waiting) this.begin(call, conn);
  }

  send(body: Uint8Array | ReadableStream<Uint8Array>, opts: CallOptions = {}): Promise<ResponseStream> {
    let block: Uint8Array;
    try {
      block = encodeHeaders(opts.headers, 'request'); // checked before anything is sent
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.closed) return Promise.reject(new SocketbusError('closed', 'socketbus: client closed'));
    if (opts.signal?.aborted) {
      return Promise.reject(new SocketbusError('cancelled', 'socketbus: cancelled: the caller aborted the request', { cause: opts.signal.reason }));
    }
    const call = new OutCall(body, opts.timeout, opts.signal, (c) => this.finished(c), block);
    this.start(call);
    return call.promise;
  }

  /** start sends out once its body's first bytes are read: now, or on the next connection. */
  private start(out: Outgoing): void {
    out.prepare().then(() => {
      if (out.done) return;
      if (this.closed) {
        out.fail(new SocketbusError('closed', 'socketbus: client closed'));
        return;
      }
      const conn = this.conn;
      if (conn && !conn.closed && !conn.drained) this.begin(out, conn);
      else this.waiting.push(out); // sent on the next connection
    }, (err: unknown) => out.end(new SocketbusError('aborted', `socketbus: aborted: the request body failed: ${String(err)}`, { cause: err })));
  }

  /**
   * fanOut makes a gather or publish and starts it; a bad header, a closed
   * client or an aborted signal fail it at once.
   */
  private fanOut(body: Uint8Array | ReadableStream<Uint8Array>, publish: boolean, opts: CallOptions): OutGather | Error {
    let block: Uint8Array;
    try {
      block = encodeHeaders(opts.headers, 'request');
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
    if (this.closed) return new SocketbusError('closed', 'socketbus: client closed');
    if (opts.signal?.aborted) {
      return new SocketbusError('cancelled', 'socketbus: cancelled: the caller aborted the gather', { cause: opts.signal.reason });
    }
    const g = new OutGather(body, publish, opts.timeout, opts.signal, (x) => this.finished(x), block);
    this.start(g);
    return g;
  }

  async gather(body: Uint8Array | ReadableStream<Uint8Array>, opts: CallOptions = {}): Promise<Reply[]> {
    const replies: Reply[] = [];
    for await (const r of this.gatherReplies(body, opts)) replies.push(r);
    return replies;
  }

  gatherReplies(body: Uint8Array | ReadableStream<Uint8Array>, opts: CallOptions = {}): AsyncIterableIterator<Reply> {
    const g = this.fanOut(body, false, opts);
    let failed = g instanceof Error ? g : undefined;
    const it: AsyncIterableIterator<Reply> = {
      async next(): Promise<IteratorResult<Reply>> {
        if (failed) {
          const e = failed;
          failed = undefined;
          throw e;
        }
        if (g instanceof Error) return { done: true, value: undefined };
        const r = await g.next();
        return r === undefined ? { done: true, value: undefined } : { done: false, value: r };
      },
      async return(): Promise<IteratorResult<Reply>> {
        // The caller stopped early: the members still working see it cancelled.
        if (!(g instanceof Error)) g.fail(undefined, CodeCancelled, 'the sender has the replies it wanted');
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() { return it; },
    };
    return it;
  }

  async publish(body: Uint8Array | ReadableStream<Uint8Array>, opts: CallOptions = {}): Promise<number> {
    const g = this.fanOut(body, true, opts);
    if (g instanceof Error) throw g;
    return g.count();
  }

  async call(body: Uint8Array | ReadableStream<Uint8Array>, opts?: CallOptions): Promise<Uint8Array> {
    const res = await this.send(body, opts);
    return readAll(res.body);
  }

  serve(handler: Handler, opts: ServeOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(new SocketbusError('closed', 'socketbus: client closed'));
    if (this.serving) {
      return Promise.reject(new SocketbusError('unsupported', 'socketbus: one serve at a time on a client (use another client)'));
    }
    const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 512));
    const st = new ServeState(handler, concurrency, () => this.conn);
    this.serving = st;
    if (this.conn && !this.conn.closed) st.grantAll(this.conn);
    const stop = () => st.stop();
    opts.signal?.addEventListener('abort', stop, { once: true });
    if (opts.signal?.aborted) stop();
    return st.promise.finally(() => {
      opts.signal?.removeEventListener('abort', stop);
      if (this.serving === st) this.serving = undefined;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const st = this.serving;
    if (st) {
      st.stop();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([st.promise, new Promise((r) => { timer = setTimeout(r, closeWait); })]);
      clearTimeout(timer);
    }
    this.closed = true;
    const err = new SocketbusError('closed', 'socketbus: client closed');
    for (const call of [...this.waiting, ...this.calls.values()]) call.fail(err);
    this.waiting = [];
    for (const r of [...this.held.values()]) r.end(err);
    st?.answered();
    this.conn?.close();
    this.conn = undefined;
  }

  private begin(call: Outgoing, conn: Conn): void {
    this.calls.set(call.key, call);
    call.begin(conn);
  }

  private finished(call: Outgoing): void {
    if (this.calls.get(call.key) === call) this.calls.delete(call.key);
    const i = this.waiting.indexOf(call);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  /** route hands a frame to the request it is for. */
  private route(conn: Conn, h: Header, payload: Uint8Array): void {
    const key = idKey(h.requestId);
    switch (h.flags) {
      case FlagRequest:
      case FlagRequest | FlagCredit: {
        const call = this.calls.get(key);
        if (!call || call.conn !== conn) return; // ended: a late frame
        if (h.type === TypeError && conn.drained && call.replayable && parseErrorVersion(h.version, payload).code === CodeServerClosed) {
          // Refused by a draining server: no receiver saw it. Send it again,
          // same ID, on the next connection.
          this.calls.delete(key);
          call.rewind();
          this.waiting.push(call);
          return;
        }
        call.handle(h, payload);
        return;
      }
      case FlagResponse: {
        const call = this.calls.get(key);
        if (call && call.conn === conn) call.handle(h, payload);
        else this.held.get(key)?.handle(h, payload);
        return;
      }
      case FlagResponse | FlagCredit:
        this.held.get(key)?.handle(h, payload);
        return;
      case FlagRequest | FlagAll: // a gather's announcement or end
      case FlagRequest | FlagAll | FlagPublish:
      case FlagResponse | FlagAll: { // a member's reply
        const g = this.calls.get(key);
        if (!g || g.conn !== conn) return; // ended: a late frame
        if (!(g instanceof OutGather)) throw new WireError(1, 'a gather frame for a request that is not a gather');
        g.handle(h, payload);
        return;
      }
      case FlagReceive:
        if (isZero(h.requestId)) {
          if (h.type === TypeEnd) this.serving?.answered(); // the answer to a stop
          return; // error: push credit refused (server_closed)
        }
        if (h.type === TypeStart) {
          this.deliver(conn, h, payload);
          return;
        }
        this.held.get(key)?.handle(h, payload);
        return;
      case FlagReceive | FlagPublish: // a published request's delivery: a start (the codec checked)
        if (isZero(h.requestId)) throw new WireError(1, 'a published delivery with the zero request ID');
        this.deliver(conn, h, payload, true);
        return;
    }
    throw new WireError(1, `a frame the server must not send (type ${h.type}, flags 0x${h.flags.toString(16)})`);
  }

  /** deliver takes a pushed request: to a handler, or back to the server when not serving. */
  private deliver(conn: Conn, h: Header, payload: Uint8Array, published = false): void {
    if (payload.length < 16) throw new WireError(1, 'a delivery without its receive ID');
    if (!isZero(payload)) throw new WireError(1, 'a delivery for a poll this client never made');
    const key = idKey(h.requestId);
    if (this.held.has(key)) throw new WireError(1, 'a request delivered twice');
    const st = this.serving;
    if (!st || st.stopping || this.closed) {
      // Not taken: the server gives it to another receiver.
      conn.frame(conn.header(TypeError, FlagReceive, h.requestId, 0, true), conn.errorPayload(CodeReturned, ''));
      return;
    }
    if (st.active >= st.concurrency) throw new WireError(1, 'a push beyond the credit granted');
    const { fields, end } = parseHeaderBlock(payload, 16);
    if (!h.final && end !== payload.length) throw new WireError(1, 'a delivery start with bytes after its header block');
    const whole = h.final ? payload.slice(end) : undefined;
    const req = new InRequest(conn, h.requestId, h, fields, whole, (r) => {
      if (this.held.get(r.key) === r) this.held.delete(r.key);
    }, published);
    this.held.set(key, req);
    void st.run(req);
  }

  /** lost handles the end of conn: fail or keep its requests, then reconnect. */
  private lost(conn: Conn, err: Error): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    const cause = err instanceof SocketbusError ? err.message : String(err);
    for (const call of [...this.calls.values()]) {
      if (call.conn !== conn) continue;
      // Written to a server that went away: a handler may have it.
      call.end(new SocketbusError('disconnected', `socketbus: disconnected: the connection was lost after the request was sent (${cause})`, { cause: err }));
    }
    for (const r of [...this.held.values()]) {
      r.end(new SocketbusError('disconnected', `socketbus: disconnected: the connection was lost (${cause})`, { cause: err }));
    }
    this.serving?.connectionLost();
    if (this.closed) return;
    const policy = this.opts.reconnect ?? {};
    if ((policy.maxAttempts ?? 0) < 0) {
      void this.giveUp(err);
      return;
    }
    void this.reconnect(err);
  }

  private async reconnect(err: Error): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    const p = this.opts.reconnect ?? {};
    const max = p.maxAttempts && p.maxAttempts > 0 ? p.maxAttempts : 60;
    const minDelay = p.minDelay && p.minDelay > 0 ? p.minDelay : 100;
    const maxDelay = Math.max(p.maxDelay && p.maxDelay > 0 ? p.maxDelay : 2000, minDelay);
    let last: unknown = err;
    for (let attempt = 1; attempt <= max && !this.closed; attempt++) {
      if (attempt > 1) {
        const d = Math.min(maxDelay, minDelay * 2 ** (attempt - 2));
        await new Promise((r) => setTimeout(r, d / 2 + Math.random() * d / 2));
        if (this.closed) break;
      }
      const i = (this.serverIndex + (this.opts.servers.length > 1 ? 1 : 0)) % this.opts.servers.length;
      try {
        await this.dial(i);
        this.reconnecting = false;
        return;
      } catch (e) {
        last = e;
        if (this.opts.servers.length > 1) this.serverIndex = i;
      }
    }
    this.reconnecting = false;
    if (!this.closed) await this.giveUp(last);
  }

  private async giveUp(err: unknown): Promise<void> {
    const e = new SocketbusError('disconnected', `socketbus: disconnected: could not reconnect (${err instanceof Error ? err.message : String(err)})`, { cause: err });
    for (const call of this.waiting) call.end(e);
    this.waiting = [];
    this.serving?.stop();
    await this.close();
  }
}
