// The public types of the client (pinned by the contract in
// shared/contract/js/contract.ts).

import type { SocketbusError } from './errors.js';
import type { TLSOptions } from './transport.js';

/** ConnectOptions configure connect. */
export interface ConnectOptions {
  /**
   * Servers to connect to, tried in order and cycled through when
   * reconnecting: `host:port` is TCP (Node only), `ws://` and `wss://` URLs
   * are WebSocket.
   */
  servers: string[];
  /** The channel's ID as a UUID string: channelFromName('orders'). */
  channel: string;
  /** The join token, as Go's WithToken. */
  token?: string;
  /** TLS on TCP (Node): true, or settings like the CLI's --tls-ca and --tls-insecure. */
  tls?: TLSOptions | boolean;
  /** This client's ID (a UUID string); random by default. */
  clientId?: string;
  /** How long dialing and joining one server may take, in milliseconds (default 10000). */
  connectTimeout?: number;
  /** How to reconnect after losing the connection (Go's ReconnectPolicy). */
  reconnect?: ReconnectOptions;
}

/** ReconnectOptions: delays in milliseconds. */
export interface ReconnectOptions {
  /** Dials in a row before giving up: default 60; negative: never reconnect. */
  maxAttempts?: number;
  /** Wait before the second attempt (default 100 ms), doubling up to maxDelay (default 2000 ms), jittered. */
  minDelay?: number;
  maxDelay?: number;
}

/** CallOptions configure one request. */
export interface CallOptions {
  /** Milliseconds; travels to the responder like a Go context deadline. */
  timeout?: number;
  /** Aborting cancels the request at the responder. */
  signal?: AbortSignal;
  /**
   * Request headers (protocol v3), sent on the request's start. Keys are
   * case-insensitive RFC 9110 tokens; values UTF-8 without NUL, CR or LF
   * (a record or [key, value] pairs may hold any UTF-8; a Headers object
   * only Latin-1). A bad header fails the call with SocketbusError
   * "invalid" ("too_large" over 32 KiB) and nothing is sent.
   */
  headers?: HeadersInit;
}

/** ResponseStream is a response that has started; its body streams. */
export interface ResponseStream {
  /** Response headers, from the response's start (several values of one key joined by ", "). */
  readonly headers: Headers;
  /** The response body, flow-controlled: the responder waits while it is not read. */
  readonly body: ReadableStream<Uint8Array>;
  /** The responder's client ID. */
  readonly from: string;
}

/** ServeOptions configure serve. */
export interface ServeOptions {
  /** Most handlers running at once (default 512, as the Go client's Serve); the server pushes no more requests than that. */
  concurrency?: number;
  /** Aborting stops serving: no new requests; serve settles when running handlers return. */
  signal?: AbortSignal;
}

/** IncomingRequest is a request delivered to a serve handler. */
export interface IncomingRequest {
  /** The request ID (UUID string). */
  readonly id: string;
  /** The requester's client ID. */
  readonly from: string;
  /**
   * published: a publish sent the request (protocol v3, docs/PROTOCOL.md
   * section 24) and wants no answer. respond and fail are harmless: they
   * send an empty response whatever they are given, and a handler that
   * answers nothing is not failed with "handler returned without
   * answering".
   */
  readonly published: boolean;
  /** Request headers, from the delivery (several values of one key joined by ", "). */
  readonly headers: Headers;
  /** The request body, flow-controlled. */
  readonly body: ReadableStream<Uint8Array>;
  /** bytes reads the whole body. */
  bytes(): Promise<Uint8Array>;
  /** Aborted when the requester cancelled, timed out or left, or the connection was lost. */
  readonly signal: AbortSignal;
  /**
   * Response headers: set them before respond or fail, which send them on
   * the response's start or with the failure. A bad one makes respond fail
   * with "invalid" (nothing sent).
   */
  readonly responseHeaders: Headers;
  /** respond answers with a body, whole or streamed; it resolves once the body is sent. */
  respond(body: Uint8Array | ReadableStream<Uint8Array>): Promise<void>;
  /**
   * fail answers with an error: a RemoteError with message at the
   * requester, and code (1 to 64 token characters, as "not_found") as its
   * remoteCode; a code that is not one fails with "invalid".
   */
  fail(message: string, code?: string): Promise<void>;
}

/**
 * Reply is one member's outcome in a gather (docs/PROTOCOL.md section 24):
 * its response, or its failure.
 */
export interface Reply {
  /** The member's client ID (UUID string), on whichever node it is. */
  readonly from: string;
  /** The response's headers, or those the member set before it failed; empty when none. */
  readonly headers: Headers;
  /** The whole response body; empty when error is set. */
  readonly body: Uint8Array;
  /**
   * The member's failure, undefined when it answered: a RemoteError (its
   * fail, with remoteCode), or a SocketbusError with code peer_gone (it
   * left first), timeout (the deadline passed first), too_large (its
   * reply was over the server's body limit, or 64 MiB), server_closed,
   * cancelled or limit.
   */
  readonly error: SocketbusError | undefined;
}

/** Handler serves one request. */
export type Handler = (req: IncomingRequest) => void | Promise<void>;

/** Client is a connection to a channel. */
export interface Client {
  /** This client's ID (UUID string). */
  readonly id: string;
  /** The channel's ID (UUID string). */
  readonly channel: string;
  /** call sends a request and resolves with the whole response body. */
  call(body: Uint8Array | ReadableStream<Uint8Array>, opts?: CallOptions): Promise<Uint8Array>;
  /** send sends a request and resolves once the response starts. */
  send(body: Uint8Array | ReadableStream<Uint8Array>, opts?: CallOptions): Promise<ResponseStream>;
  /**
   * gather sends body to every other member of the channel present when
   * the server accepts it, on every node, and resolves with one Reply per
   * member once every member has one: at the moment the last outcome is
   * known, never on a timer. opts.timeout is every member's deadline (a
   * member that has not answered by then has a Reply with code timeout);
   * opts.signal cancels the gather at every member still working.
   * The body streams to all members under flow control, as send's does.
   * Fails with code no_peers when no other member exists, limit when the
   * channel has more members than the server's MaxGatherMembers, and
   * disconnected if the connection is lost after it was sent (a gather is
   * never sent twice).
   */
  gather(body: Uint8Array | ReadableStream<Uint8Array>, opts?: CallOptions): Promise<Reply[]>;
  /**
   * gatherReplies is gather that yields each Reply as it arrives, for
   * callers that act on the first answers at once. Leaving the loop early
   * (break, return, throw) ends the gather: the members still working see
   * it cancelled. The gather's own failure is thrown by the iteration,
   * after the replies that came before it.
   */
  gatherReplies(body: Uint8Array | ReadableStream<Uint8Array>, opts?: CallOptions): AsyncIterableIterator<Reply>;
  /**
   * publish delivers body to every other member present when the server
   * accepts it, on every node, and resolves with how many took it, once
   * each has taken it or left. What members answer is discarded; a
   * member's IncomingRequest.published is true. A member that neither
   * takes it nor leaves by opts.timeout is not counted. Fails as gather.
   */
  publish(body: Uint8Array | ReadableStream<Uint8Array>, opts?: CallOptions): Promise<number>;
  /** serve runs handler for requests other clients send on the channel. */
  serve(handler: Handler, opts?: ServeOptions): Promise<void>;
  /** close stops serving, fails what is in flight with code "closed", and closes the connection. */
  close(): Promise<void>;
}
