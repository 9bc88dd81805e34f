// The TCP transport, for Node: node:net, or node:tls with settings like the
// CLI's --tls, --tls-ca and --tls-insecure.

import * as net from 'node:net';
import * as tls from 'node:tls';
import { SocketbusError } from './errors.js';
import type { TLSOptions, Transport } from './transport.js';

/** splitHostPort splits host:port, [v6]:port; the port defaults to 7411. */
function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr) ?? /^([^:]*)(?::(\d+))?$/.exec(addr);
  if (!m) throw new SocketbusError('invalid', `socketbus: not host:port: ${JSON.stringify(addr)}`);
  return { host: m[1] || '127.0.0.1', port: m[2] ? Number(m[2]) : 7411 };
}

/** dialTCP opens a TCP (or TLS) transport to host:port. */
export function dialTCP(addr: string, tlsOpt: TLSOptions | boolean | undefined): Promise<Transport> {
  const { host, port } = splitHostPort(addr);
  return new Promise((resolve, reject) => {
    let open = false;
    let failure: Error | undefined;
    let sock: net.Socket;
    const t: Transport = {
      write(frames) {
        sock.cork();
        for (const f of frames) sock.write(f);
        sock.uncork();
      },
      close() { sock.end(); sock.destroySoon(); },
      onData: () => {},
      onClose: () => {},
    };
    const ready = () => { open = true; sock.setNoDelay(true); resolve(t); };
    if (tlsOpt) {
      const o: TLSOptions = tlsOpt === true ? {} : tlsOpt;
      sock = tls.connect({
        host, port, minVersion: 'TLSv1.2',
        servername: o.servername ?? (net.isIP(host) ? undefined : host),
        ca: o.ca !== undefined ? [typeof o.ca === 'string' ? o.ca : Buffer.from(o.ca)] : undefined,
        rejectUnauthorized: !o.insecure,
      }, ready);
    } else {
      sock = net.connect({ host, port }, ready);
    }
    sock.on('data', (b: Buffer) => t.onData(new Uint8Array(b.buffer, b.byteOffset, b.length)));
    sock.on('error', (e) => { failure = e; });
    sock.on('close', () => {
      if (!open) {
        reject(new SocketbusError('disconnected', `socketbus: dial ${addr}: ${failure?.message ?? 'closed'}`, { cause: failure }));
        return;
      }
      t.onClose(failure ? new SocketbusError('disconnected', `socketbus: connection lost: ${failure.message}`, { cause: failure }) : undefined);
    });
  });
}
