// One connection: frames reassembled from the transport's byte stream,
// frames written in batches (everything queued in one turn of the event
// loop goes out in one write), the join, and keepalive.

import { SocketbusError } from './errors.js';
import type { Transport } from './transport.js';
import {
  FlagJoin, FlagPing, TypeEnd, TypeError, TypeStart, WireError, codeNames, decodeHeader, encodeHeader, errorPayload, frameBytes,
  headerSize, isDrainPing, maxClientWindow, parseErrorVersion, errorPayload3, streamWindow, version3, zeroId, type Header,
} from './wire.js';

/** Keepalive: check every half interval; ping after one silent interval; close after two. */
const pingInterval = 30_000;

/** FrameHandler handles one frame; a WireError it throws is a protocol error. */
export type FrameHandler = (h: Header, payload: Uint8Array) => void;

/** JoinInfo is what the join sends. */
export interface JoinInfo {
  clientId: Uint8Array;
  channelId: Uint8Array;
  token?: string;
}

/** Conn is one joined connection. */
export class Conn {
  /** version is the protocol version this connection speaks (3, section 23). */
  readonly version = version3;
  /** maxMessageBytes is the server's body limit (0: none), from the join's acknowledgement. */
  maxMessageBytes = 0;
  /** window is the stream window the join's acknowledgement announced, within maxClientWindow (section 12). */
  window = streamWindow;
  closed = false;
  /** drained is set once the server's drain ping arrived (section 17). */
  drained = false;

  private out: Uint8Array[] = [];
  private flushQueued = false;
  private lastHeard = Date.now();
  private timer: ReturnType<typeof setInterval> | undefined;

  // Reassembly: a header being filled, then a payload.
  private hdr = new Uint8Array(headerSize);
  private hdrFill = 0;
  private cur: Header | undefined;
  private payload: Uint8Array | undefined;
  private payloadFill = 0;

  /** handler receives frames once joined. */
  handler: FrameHandler = () => {};
  /** onLost is called once when the connection ends other than by close(). */
  onLost: (err: Error) => void = () => {};

  private constructor(private readonly t: Transport, private readonly join: JoinInfo) {}

  /** open joins over t and resolves once the server acknowledged. */
  static open(t: Transport, join: JoinInfo, timeout = 10_000): Promise<Conn> {
    const c = new Conn(t, join);
    let timer: ReturnType<typeof setTimeout> | undefined;
    return new Promise<Conn>((resolve, reject) => {
      const joinId = globalThis.crypto.getRandomValues(new Uint8Array(16));
      let joined = false;
      timer = setTimeout(() => {
        c.closeTransport();
        reject(new SocketbusError('timeout', `socketbus: the server did not answer the join within ${timeout} ms`));
      }, timeout);
      c.handler = (h, payload) => {
        if (!joined && h.flags === FlagJoin && h.type === TypeStart) {
          if (!equalBytes(h.requestId, joinId)) throw new WireError(1, 'the join acknowledgement does not echo the join ID');
          joined = true;
          if (payload.length >= 8) {
            const dv = new DataView(payload.buffer, payload.byteOffset, 8);
            c.maxMessageBytes = dv.getUint32(0) * 2 ** 32 + dv.getUint32(4);
          }
          if (payload.length >= 16) {
            const w = new DataView(payload.buffer, payload.byteOffset + 12, 4).getUint32(0);
            c.window = Math.min(Math.max(w, streamWindow), maxClientWindow);
          }
          c.handler = () => {};
          c.onLost = () => {};
          resolve(c);
          return;
        }
        if (!joined && h.type === TypeError) {
          const e = parseErrorVersion(h.version, payload);
          c.closeTransport();
          reject(new SocketbusError(codeNames[e.code] ?? 'protocol', `socketbus: join refused: ${e.message}`));
          return;
        }
        if (!joined) throw new WireError(1, 'a frame before the join acknowledgement');
      };
      c.onLost = (err) => reject(err instanceof SocketbusError ? err
        : new SocketbusError('disconnected', `socketbus: connection lost while joining: ${err.message}`, { cause: err }));
      t.onData = (chunk) => c.read(chunk);
      t.onClose = (err) => c.lost(err ?? new SocketbusError('disconnected', 'socketbus: the server closed the connection'));
      const token = join.token ? new TextEncoder().encode(join.token) : undefined;
      c.send(frameBytes({
        version: c.version, type: TypeStart, flags: FlagJoin, requestId: joinId, clientId: join.clientId,
        channelId: join.channelId, timeout: 0, seq: 0, final: true, length: 0,
      }, token));
    }).finally(() => clearTimeout(timer)).then((conn) => {
      conn.timer = setInterval(() => conn.keepalive(), pingInterval / 2);
      (conn.timer as { unref?: () => void }).unref?.();
      return conn;
    });
  }

  /** header returns a header of this connection with the given fields. */
  header(type: number, flags: number, requestId: Uint8Array, seq = 0, final = false, timeout = 0): Header {
    return {
      version: this.version, type, flags, requestId, clientId: this.join.clientId, channelId: this.join.channelId,
      timeout, seq, final, length: 0,
    };
  }

  /** send queues a frame's bytes; they go out with the turn's batch. */
  send(frame: Uint8Array): void {
    if (this.closed) return;
    this.out.push(frame);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  /**
   * frame queues a frame whose payload is prefix (a header block, say) then
   * payload.
   */
  frame(h: Header, payload?: Uint8Array, prefix?: Uint8Array): void {
    const pn = prefix ? prefix.length : 0;
    const n = payload ? payload.length : 0;
    if (n < 4096) {
      if (pn === 0) {
        this.send(frameBytes(h, payload));
        return;
      }
      const b = new Uint8Array(headerSize + pn + n);
      encodeHeader(b, 0, { ...h, length: pn + n });
      b.set(prefix!, headerSize);
      if (payload) b.set(payload, headerSize + pn);
      this.send(b);
      return;
    }
    // A large payload goes out as it is, after its header and prefix: no copy.
    const hdr = new Uint8Array(headerSize + pn);
    encodeHeader(hdr, 0, { ...h, length: pn + n });
    if (prefix) hdr.set(prefix, headerSize);
    this.send(hdr);
    this.send(payload!);
  }

  /** errorPayload is an error frame's payload in this connection's version. */
  errorPayload(code: number, message: string, appCode = '', block?: Uint8Array): Uint8Array {
    return this.version >= version3 ? errorPayload3(code, message, appCode, block) : errorPayload(code, message);
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.closed || this.out.length === 0) return;
    const out = this.out;
    this.out = [];
    try {
      this.t.write(out);
    } catch (e) {
      this.lost(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** close writes what is queued and closes the connection. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    clearInterval(this.timer);
    this.t.close();
  }

  private closeTransport(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.t.close();
  }

  /** lost ends the connection with err, once. */
  lost(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.t.close();
    this.onLost(err);
  }

  /** protocolError sends a connection-level error and closes. */
  private protocolError(code: number, message: string): void {
    if (this.closed) return;
    this.frame({ ...this.header(TypeError, 0, zeroId, 0, true), clientId: zeroId, channelId: zeroId }, this.errorPayload(code, message));
    this.flush();
    this.lost(new SocketbusError(codeNames[code] ?? 'protocol', `socketbus: the server broke the protocol: ${message}`));
  }

  private keepalive(): void {
    const silent = Date.now() - this.lastHeard;
    if (silent >= 2 * pingInterval) {
      this.lost(new SocketbusError('disconnected', 'socketbus: the server stopped answering pings'));
    } else if (silent >= pingInterval) {
      this.frame(this.header(TypeStart, FlagPing, zeroId, 0, true));
    }
  }

  /** read takes the next bytes of the stream and dispatches whole frames. */
  private read(chunk: Uint8Array): void {
    if (this.closed) return;
    this.lastHeard = Date.now();
    try {
      let off = 0;
      while (off < chunk.length && !this.closed) {
        if (this.cur === undefined) {
          if (this.hdrFill === 0 && chunk.length - off >= headerSize) {
            const h = decodeHeader(chunk, off);
            if (chunk.length - off - headerSize >= h.length) {
              // The whole frame is in the chunk: no copy.
              const p = chunk.subarray(off + headerSize, off + headerSize + h.length);
              off += headerSize + h.length;
              this.dispatch(h, p);
              continue;
            }
            this.cur = h;
            off += headerSize;
          } else {
            const n = Math.min(headerSize - this.hdrFill, chunk.length - off);
            this.hdr.set(chunk.subarray(off, off + n), this.hdrFill);
            this.hdrFill += n;
            off += n;
            if (this.hdrFill < headerSize) break;
            this.hdrFill = 0;
            this.cur = decodeHeader(this.hdr);
          }
          this.payload = new Uint8Array(this.cur.length);
          this.payloadFill = 0;
        }
        const p = this.payload!;
        const n = Math.min(p.length - this.payloadFill, chunk.length - off);
        p.set(chunk.subarray(off, off + n), this.payloadFill);
        this.payloadFill += n;
        off += n;
        if (this.payloadFill === p.length) {
          const h = this.cur;
          this.cur = undefined;
          this.payload = undefined;
          this.dispatch(h, p);
        }
      }
    } catch (e) {
      if (e instanceof WireError) {
        this.protocolError(e.code, e.message);
      } else {
        this.protocolError(1, `internal: ${e instanceof Error ? e.message : String(e)}`);
        throw e;
      }
    }
  }

  private dispatch(h: Header, payload: Uint8Array): void {
    if (h.version !== this.version) throw new WireError(2, `a version ${h.version} frame on a version ${this.version} connection`);
    if (h.flags === FlagPing) {
      if (h.type === TypeStart) {
        // Answer in order, echoing request ID, sequence and payload.
        this.frame({ ...this.header(TypeEnd, FlagPing, h.requestId, h.seq, true) }, payload);
        if (isDrainPing(h.requestId)) this.drained = true;
      }
      return; // a pong: hearing it was the point
    }
    if (h.flags === 0 && h.type === TypeError) {
      const e = parseErrorVersion(h.version, payload);
      this.lost(new SocketbusError(codeNames[e.code] ?? 'protocol', `socketbus: the server closed the connection: ${e.message}`));
      return;
    }
    this.handler(h, payload);
  }
}

/** equalBytes compares two byte arrays. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
