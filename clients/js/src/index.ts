// @socketbus/client for Node: TCP (host:port, TLS with opts.tls) and
// WebSocket (ws://, wss://; Node 22 and later have a global WebSocket).

import type { Client, ConnectOptions } from './api.js';
import { connectWith } from './client.js';
import { dialTCP } from './tcp.js';
import { dialWebSocket, isWebSocketURL } from './transport.js';

export type {
  CallOptions, Client, ConnectOptions, Handler, IncomingRequest, ReconnectOptions, Reply, ResponseStream, ServeOptions,
} from './api.js';
export type { TLSOptions } from './transport.js';
export { RemoteError, SocketbusError } from './errors.js';
export { channelFromName } from './uuid.js';

/** connect joins opts.channel on one of opts.servers. */
export function connect(opts: ConnectOptions): Promise<Client> {
  return connectWith(opts, (addr, tls) => (isWebSocketURL(addr) ? dialWebSocket(addr) : dialTCP(addr, tls)));
}
