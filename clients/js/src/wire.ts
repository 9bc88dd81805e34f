// The frame codec of docs/PROTOCOL.md (sections 3-5, 11, 12, 20): pure
// functions over Uint8Array, no I/O.

/** Size of a frame header. */
export const headerSize = 68;
/** Largest payload of one frame. */
export const maxFramePayload = 65536;
/** Protocol versions. */
export const version1 = 1;
export const version2 = 2;
/** Version 3 (docs/PROTOCOL.md section 23): this client does not speak it yet, but its codec reads v3 headers. */
export const version3 = 3;
/** Per-stream window on every hop. */
export const streamWindow = 256 << 10;
/** Credit a request body has from its start, on the first hop. */
export const initialRequestCredit = 16 << 10;
/** The largest whole request and whole response (section 20.1). */
export const maxWholeRequest = initialRequestCredit;
export const maxWholeResponse = maxFramePayload;
/** A pushed request's implicit body credit, and the grant that takes it. */
export const pushedCredit = 16 << 10;
export const takeGrant = streamWindow - pushedCredit;

/** Frame types. */
export const TypeStart = 1, TypeChunk = 2, TypeEnd = 3, TypeError = 4;
/** Flags. */
export const FlagRequest = 0x0001, FlagJoin = 0x0002, FlagReceive = 0x0004, FlagResponse = 0x0008,
  FlagCredit = 0x0010, FlagPing = 0x0020;
const knownFlags = 0x003f;

/** Error codes (section 11.3) and their names. */
export const codeNames: Record<number, string> = {
  1: 'protocol', 2: 'bad_version', 3: 'too_large', 4: 'unauthorized', 5: 'conflict', 6: 'no_peers',
  7: 'timeout', 8: 'peer_gone', 9: 'cancelled', 10: 'aborted', 11: 'remote', 12: 'server_closed',
  13: 'limit', 14: 'idle', 15: 'internal', 16: 'returned',
};
export const CodeProtocol = 1, CodeTooLarge = 3, CodeTimeout = 7, CodeCancelled = 9, CodeAborted = 10,
  CodeRemote = 11, CodeServerClosed = 12, CodeReturned = 16;

/** The final bit of the sequence field. */
const finalBit = 0x80000000;

/** Header is a decoded frame header. IDs are views of 16 bytes. */
export interface Header {
  version: number;
  type: number;
  flags: number;
  requestId: Uint8Array;
  clientId: Uint8Array;
  channelId: Uint8Array;
  /** Milliseconds; at most 2^53-1 here (the wire has 64 bits). */
  timeout: number;
  seq: number;
  final: boolean;
  length: number;
}

/** WireError is a malformed header or payload: a protocol error. */
export class WireError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** The flag/type combinations of section 5. */
function validCombination(flags: number, type: number): boolean {
  switch (flags) {
    case FlagRequest: case FlagReceive: case FlagResponse:
      return type >= TypeStart && type <= TypeError;
    case FlagJoin:
      return type === TypeStart || type === TypeError;
    case FlagPing:
      return type === TypeStart || type === TypeEnd;
    case FlagRequest | FlagCredit: case FlagReceive | FlagCredit: case FlagResponse | FlagCredit:
      return type === TypeChunk;
    case 0:
      return type === TypeError;
  }
  return false;
}

/**
 * encodeHeader writes h into b at off (68 bytes). The length field is
 * h.length.
 */
export function encodeHeader(b: Uint8Array, off: number, h: Header): void {
  const dv = new DataView(b.buffer, b.byteOffset + off, headerSize);
  dv.setUint8(0, h.version);
  dv.setUint8(1, h.type);
  dv.setUint16(2, h.flags);
  b.set(h.requestId, off + 4);
  b.set(h.clientId, off + 20);
  b.set(h.channelId, off + 36);
  dv.setUint32(52, Math.floor(h.timeout / 2 ** 32));
  dv.setUint32(56, h.timeout >>> 0);
  dv.setUint32(60, ((h.seq & 0x7fffffff) | (h.final ? finalBit : 0)) >>> 0);
  dv.setUint32(64, h.length);
}

/** frameBytes returns the header and payload of a frame in one array. */
export function frameBytes(h: Header, payload?: Uint8Array): Uint8Array {
  const n = payload ? payload.length : 0;
  const b = new Uint8Array(headerSize + n);
  encodeHeader(b, 0, { ...h, length: n });
  if (payload) b.set(payload, headerSize);
  return b;
}

/**
 * decodeHeader reads the header at b[off:off+68] and checks what section 3
 * to 5 check on a header alone: version, type, flags, the end frame's final
 * bit, and the length bound, before any payload is read.
 */
export function decodeHeader(b: Uint8Array, off = 0): Header {
  if (b.length - off < headerSize) throw new WireError(CodeProtocol, 'short header');
  const dv = new DataView(b.buffer, b.byteOffset + off, headerSize);
  const version = dv.getUint8(0);
  if (version !== version1 && version !== version2 && version !== version3) throw new WireError(2, `unsupported protocol version ${version}`);
  const type = dv.getUint8(1);
  const flags = dv.getUint16(2);
  if (type < TypeStart || type > TypeError) throw new WireError(CodeProtocol, `unknown frame type ${type}`);
  if (flags & ~knownFlags) throw new WireError(CodeProtocol, `unknown flags 0x${flags.toString(16)}`);
  const length = dv.getUint32(64);
  if (length > maxFramePayload) throw new WireError(CodeTooLarge, `frame payload of ${length} bytes exceeds ${maxFramePayload}`);
  if (!validCombination(flags, type)) throw new WireError(CodeProtocol, `flags 0x${flags.toString(16)} not allowed on type ${type}`);
  const seqWord = dv.getUint32(60);
  const final = (seqWord & finalBit) !== 0;
  if (type === TypeEnd && !final) throw new WireError(CodeProtocol, 'an end frame without the final bit');
  return {
    version, type, flags,
    requestId: b.slice(off + 4, off + 20),
    clientId: b.slice(off + 20, off + 36),
    channelId: b.slice(off + 36, off + 52),
    timeout: dv.getUint32(52) * 2 ** 32 + dv.getUint32(56),
    seq: seqWord & 0x7fffffff,
    final,
    length,
  };
}

/** creditPayload is a 4-byte grant. */
export function creditPayload(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** parseCredit reads a grant: 4 bytes, not 0. */
export function parseCredit(p: Uint8Array): number {
  if (p.length !== 4) throw new WireError(CodeProtocol, `a credit grant of ${p.length} bytes`);
  const n = new DataView(p.buffer, p.byteOffset, 4).getUint32(0);
  if (n === 0) throw new WireError(CodeProtocol, 'a credit grant of 0');
  return n;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** errorPayload is an error frame's payload: the code, then the message cut to 65534 bytes. */
export function errorPayload(code: number, message: string): Uint8Array {
  let m = utf8.encode(message);
  if (m.length > 65534) {
    let n = 65534;
    while (n > 0 && (m[n]! & 0xc0) === 0x80) n--; // a character boundary
    m = m.subarray(0, n);
  }
  const b = new Uint8Array(2 + m.length);
  new DataView(b.buffer).setUint16(0, code);
  b.set(m, 2);
  return b;
}

/** parseError reads an error frame's payload. */
export function parseError(p: Uint8Array): { code: number; message: string } {
  if (p.length < 2) throw new WireError(CodeProtocol, 'an error payload shorter than 2 bytes');
  const code = new DataView(p.buffer, p.byteOffset, 2).getUint16(0);
  let message: string;
  try {
    message = utf8Strict.decode(p.subarray(2));
  } catch {
    throw new WireError(CodeProtocol, 'an error message that is not UTF-8');
  }
  return { code, message };
}

/** The drain ping's request ID starts with "sbdrain" (section 17). */
export function isDrainPing(id: Uint8Array): boolean {
  const d = [0x73, 0x62, 0x64, 0x72, 0x61, 0x69, 0x6e];
  for (let i = 0; i < d.length; i++) if (id[i] !== d[i]) return false;
  for (let i = d.length; i < 16; i++) if (id[i] !== 0) return false;
  return true;
}

/** The zero ID. */
export const zeroId = new Uint8Array(16);

/** isZero reports whether a 16-byte ID is all zeros. */
export function isZero(id: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 16; i++) if (id[off + i] !== 0) return false;
  return true;
}

/**
 * joinPayload is a join's payload (section 7): the token alone, or, with a
 * channel name, the named fields.
 */
export function joinPayload(token: string, channelName?: string): Uint8Array {
  if (!channelName) return utf8.encode(token);
  const parts: number[] = [0x00, 0x73, 0x62, 0x6a];
  const field = (tag: number, v: string) => {
    if (!v) return;
    const b = utf8.encode(v);
    parts.push(tag, b.length >> 8, b.length & 0xff, ...b);
  };
  field(1, token);
  field(2, channelName);
  return new Uint8Array(parts);
}
