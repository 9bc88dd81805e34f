// Transports carry the byte stream of frames: TCP (Node, src/tcp.ts) or
// WebSocket (browsers and any runtime with a global WebSocket). The core
// sees only this interface.

import { SocketbusError } from './errors.js';

/** Transport is one open connection to a server. */
export interface Transport {
  /** write sends frames, in order, as one batch. */
  write(frames: Uint8Array[]): void;
  /** close ends the connection; onClose follows. */
  close(): void;
  /** onData receives the bytes read, in order; set by the connection. */
  onData: (chunk: Uint8Array) => void;
  /** onClose is called once when the connection ends (err: not by close()). */
  onClose: (err?: Error) => void;
}

/** TLS settings of the TCP transport, like the CLI's --tls flags. */
export interface TLSOptions {
  /** PEM certificate(s) to trust instead of the system's (--tls-ca's file contents). */
  ca?: string | Uint8Array;
  /** Skip verifying the server's certificate (--tls-insecure): for tests only. */
  insecure?: boolean;
  /** The name to verify the certificate against; default: the address's host. */
  servername?: string;
}

/** Dialer opens a transport to addr: a ws:// or wss:// URL, or host:port. */
export type Dialer = (addr: string, tls: TLSOptions | boolean | undefined) => Promise<Transport>;

/** isWebSocketURL reports whether addr names a WebSocket server. */
export function isWebSocketURL(addr: string): boolean {
  return /^wss?:\/\//i.test(addr);
}

/**
 * wsMessageBytes is the most a client puts in one WebSocket message: the
 * server takes up to 1 MiB (docs/PROTOCOL.md section 22).
 */
const wsMessageBytes = 256 << 10;

/** dialWebSocket opens a WebSocket transport with the global WebSocket. */
export function dialWebSocket(url: string): Promise<Transport> {
  const WS = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
  if (!WS) {
    return Promise.reject(new SocketbusError('unsupported',
      `socketbus: this runtime has no WebSocket (Node 20: connect to host:port over TCP instead of ${url})`));
  }
  return new Promise((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WS(url);
    } catch (e) {
      reject(new SocketbusError('disconnected', `socketbus: websocket ${url}: ${String(e)}`, { cause: e }));
      return;
    }
    ws.binaryType = 'arraybuffer';
    let open = false;
    const t: Transport = {
      write(frames) {
        let i = 0;
        while (i < frames.length) {
          let n = 0, j = i;
          while (j < frames.length && (j === i || n + frames[j]!.length <= wsMessageBytes)) n += frames[j++]!.length;
          if (j === i + 1) {
            ws.send(frames[i]! as Uint8Array<ArrayBuffer>);
          } else {
            const msg = new Uint8Array(n);
            let off = 0;
            for (let k = i; k < j; k++) { msg.set(frames[k]!, off); off += frames[k]!.length; }
            ws.send(msg);
          }
          i = j;
        }
      },
      close() { ws.close(1000); },
      onData: () => {},
      onClose: () => {},
    };
    ws.onopen = () => { open = true; resolve(t); };
    ws.onmessage = (ev: MessageEvent) => {
      if (ev.data instanceof ArrayBuffer) t.onData(new Uint8Array(ev.data));
      else t.onClose(new SocketbusError('protocol', 'socketbus: a text WebSocket message from the server'));
    };
    ws.onclose = (ev: CloseEvent) => {
      if (!open) {
        reject(new SocketbusError('disconnected', `socketbus: websocket ${url}: could not connect (close ${ev.code})`));
        return;
      }
      t.onClose(ev.code === 1000 || ev.code === 1001 ? undefined
        : new SocketbusError('disconnected', `socketbus: websocket closed (${ev.code}${ev.reason ? ' ' + ev.reason : ''})`));
    };
  });
}
