// @socketbus/client for browsers: WebSocket only (ws://, wss://), no Node
// built-ins. The same API as the Node build.

import type { Client, ConnectOptions } from './api.js';
import { connectWith } from './client.js';
import { SocketbusError } from './errors.js';
import { dialWebSocket, isWebSocketURL } from './transport.js';

export type {
  CallOptions, Client, ConnectOptions, Handler, IncomingRequest, ReconnectOptions, Reply, ResponseStream, ServeOptions,
} from './api.js';
export type { TLSOptions } from './transport.js';
export { RemoteError, SocketbusError } from './errors.js';
export { channelFromName } from './uuid.js';

/** connect joins opts.channel on one of opts.servers (ws:// or wss:// URLs). */
export function connect(opts: ConnectOptions): Promise<Client> {
  return connectWith(opts, (addr) => (isWebSocketURL(addr) ? dialWebSocket(addr)
    : Promise.reject(new SocketbusError('unsupported', `socketbus: a browser reaches servers over WebSocket only, not ${addr} (use a ws:// or wss:// URL)`))));
}
