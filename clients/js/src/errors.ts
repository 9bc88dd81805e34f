// Errors of the client. Every failure is a SocketbusError whose code is a
// name from docs/PROTOCOL.md section 11.3 (no_peers, timeout, peer_gone,
// remote...), or one of the client's own: cancelled (the caller's signal
// aborted), closed (the client was closed), disconnected (the connection
// was lost after the request was written: a handler may have it, so it is
// not sent again), unsupported (a transport the runtime lacks, or a second
// serve), invalid (a bad argument: a header key that is not a token, say).

/** SocketbusError is what every operation of the client fails with. */
export class SocketbusError extends Error {
  /** The code's name, as in docs/PROTOCOL.md section 11.3, or a client code. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SocketbusError';
    this.code = code;
  }
}

/** RemoteError is a responder's failure (req.fail, or its handler threw). */
export class RemoteError extends SocketbusError {
  /** The responder's own code (req.fail(message, code)), when it gave one. */
  readonly remoteCode: string | undefined;
  /** The response headers the responder set before it failed (empty when none). */
  readonly headers: Headers;

  constructor(message: string, remoteCode?: string, headers?: Headers) {
    super('remote', message);
    this.name = 'RemoteError';
    this.remoteCode = remoteCode;
    this.headers = headers ?? new Headers();
  }
}
