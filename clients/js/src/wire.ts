// The frame codec of docs/PROTOCOL.md (sections 3-5, 11, 12, 20): pure
// functions over Uint8Array, no I/O.

/** Size of a frame header. */
export const headerSize = 68;
/** Largest payload of one frame. */
export const maxFramePayload = 65536;
/** Protocol versions. */
export const version1 = 1;
export const version2 = 2;
/** Version 3 (docs/PROTOCOL.md section 23): headers, application error codes. The client joins with it. */
export const version3 = 3;
/** Per-stream implicit credit on every hop, and the window of a server that announces none. */
export const streamWindow = 256 << 10;
/** The most of one body this client lets a server send ahead, whatever window it announces (section 12). */
export const maxClientWindow = 1 << 20;
/** Credit a request body has from its start, on the first hop. */
export const initialRequestCredit = 16 << 10;
/** The largest whole request and whole response (section 20.1). */
export const maxWholeRequest = initialRequestCredit;
export const maxWholeResponse = maxFramePayload;
/** A pushed request's implicit body credit; taking it grants the rest of the connection's window. */
export const pushedCredit = 16 << 10;

/** Frame types. */
export const TypeStart = 1, TypeChunk = 2, TypeEnd = 3, TypeError = 4;
/** Flags. */
export const FlagRequest = 0x0001, FlagJoin = 0x0002, FlagReceive = 0x0004, FlagResponse = 0x0008,
  FlagCredit = 0x0010, FlagPing = 0x0020;
/**
 * Version 3's flags of gathers (section 24): FlagAll marks a gather or
 * publish, FlagPublish a publish. On a version 1 or 2 frame they are
 * unknown flags.
 */
export const FlagAll = 0x0040, FlagPublish = 0x0080;
/** The flags each version knows (wire.KnownFlags, wire.KnownFlagsV3). */
const knownFlags = 0x003f;
const knownFlagsV3 = knownFlags | FlagAll | FlagPublish;

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
    case FlagRequest | FlagAll: case FlagRequest | FlagAll | FlagPublish:
      // A gather's or publish's start (from its sender), the announcement
      // of its members (start) and its end (end).
      return type === TypeStart || type === TypeEnd;
    case FlagResponse | FlagAll:
      return type >= TypeStart && type <= TypeError; // one member's reply
    case FlagResponse | FlagAll | FlagCredit:
      return type === TypeChunk; // credit for one member's reply
    case FlagReceive | FlagPublish:
      return type === TypeStart; // the delivery of a published request
    case FlagReceive | FlagAll: case FlagReceive | FlagAll | FlagPublish:
      // A gather's part for another node (PROTOCOL.md section 24.5): valid
      // on the wire between nodes, never sent to a client.
      return type === TypeStart;
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
  if (flags & ~(version >= version3 ? knownFlagsV3 : knownFlags)) throw new WireError(CodeProtocol, `unknown flags 0x${flags.toString(16)}`);
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

/** parseError reads an error frame's payload of version 1 or 2. */
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

/**
 * replyCreditPayload is the payload of chunk|response|credit|all (section
 * 24): a 4-byte grant for the reply of the member whose client ID follows.
 */
export function replyCreditPayload(n: number, member: Uint8Array): Uint8Array {
  const b = new Uint8Array(4 + 16);
  new DataView(b.buffer).setUint32(0, n);
  b.set(member, 4);
  return b;
}

/** parseReplyCredit reads chunk|response|credit|all's payload: a grant, then a member's client ID. */
export function parseReplyCredit(p: Uint8Array): { credit: number; member: Uint8Array } {
  if (p.length !== 20) throw new WireError(CodeProtocol, `a reply credit grant of ${p.length} bytes: want a 4-byte grant and a 16-byte client ID`);
  return { credit: parseCredit(p.subarray(0, 4)), member: p.slice(4) };
}

/** countPayload is a gather's 4-byte count: an announcement's first field, an end's payload. */
export function countPayload(n: number): Uint8Array {
  return creditPayload(n);
}

/**
 * parseAnnouncement reads a gather's announcement of members (start|
 * request|all, section 24): a 4-byte count, then that many 16-byte client
 * IDs.
 */
export function parseAnnouncement(p: Uint8Array): Uint8Array[] {
  if (p.length < 4) throw new WireError(CodeProtocol, `a gather's announcement of ${p.length} bytes; it starts with a 4-byte count`);
  const n = new DataView(p.buffer, p.byteOffset, 4).getUint32(0);
  if (p.length !== 4 + 16 * n) throw new WireError(CodeProtocol, `a gather's announcement of ${n} members carries ${p.length} bytes, not ${4 + 16 * n}`);
  const ids: Uint8Array[] = [];
  for (let i = 0; i < n; i++) ids.push(p.slice(4 + 16 * i, 20 + 16 * i));
  return ids;
}

/** parseCount reads a gather's end (end|request|all, section 24): a 4-byte count. */
export function parseCount(p: Uint8Array): number {
  if (p.length !== 4) throw new WireError(CodeProtocol, `a gather's end frame carries a 4-byte count, not ${p.length} bytes`);
  return new DataView(p.buffer, p.byteOffset, 4).getUint32(0);
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

// Version 3 (docs/PROTOCOL.md section 23): header blocks and error payloads.

/** HeaderFields are header fields in order: one [key, value] per value. */
export type HeaderFields = ReadonlyArray<readonly [string, string]>;

/** The largest header block (wire.MaxHeaderBlock), length field excluded. */
export const maxHeaderBlock = 32 << 10;
/** The longest application error code (wire.MaxAppCode). */
export const maxAppCode = 64;
/** The empty header block: its 2-byte length, 0. Shared; never written to. */
export const noHeaders = new Uint8Array(2);

function isTokenChar(c: number): boolean {
  if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)) return true;
  // ! # $ % & ' * + - . ^ _ ` | ~
  return c === 0x21 || (c >= 0x23 && c <= 0x27) || c === 0x2a || c === 0x2b || c === 0x2d || c === 0x2e ||
    c === 0x5e || c === 0x5f || c === 0x60 || c === 0x7c || c === 0x7e;
}

/** isToken reports whether s is 1 or more RFC 9110 token characters. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

/**
 * canonicalKey canonicalizes a header key as Go's net/textproto does: the
 * first letter and every letter after a '-' upper-case, the others
 * lower-case. A key that is not a token is returned as it is.
 */
export function canonicalKey(k: string): string {
  if (!isToken(k)) return k;
  let out = '';
  let upper = true;
  for (let i = 0; i < k.length; i++) {
    const c = k[i]!;
    out += upper ? c.toUpperCase() : c.toLowerCase();
    upper = c === '-';
  }
  return out;
}

/** checkHeaderValue throws a WireError if v is not a header value: NUL, CR or LF, or over 65535 bytes. */
function checkValueBytes(key: string, v: Uint8Array): void {
  if (v.length > 0xffff) throw new WireError(CodeTooLarge, `header ${key}: a value of ${v.length} bytes (at most 65535)`);
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === 0 || c === 0x0d || c === 0x0a) throw new WireError(CodeProtocol, `header ${key}: the value holds byte 0x${c.toString(16).padStart(2, '0')} (no NUL, CR or LF)`);
  }
}

/**
 * headerBlock encodes fields as a header block (section 23.1): keys
 * canonicalized and sorted, each key's values in order. No fields is the
 * shared 2-byte noHeaders. A key that is not 1 to 255 token characters, a
 * value with NUL, CR or LF, or a block over 32768 bytes throws a WireError.
 */
export function headerBlock(fields: HeaderFields | undefined): Uint8Array {
  if (!fields || fields.length === 0) return noHeaders;
  if (fields.length > 0xffff) throw new WireError(CodeTooLarge, `${fields.length} header fields`);
  const enc: { key: string; k: Uint8Array; v: Uint8Array; i: number }[] = [];
  let n = 2;
  for (let i = 0; i < fields.length; i++) {
    const [rawKey, value] = fields[i]!;
    if (!isToken(rawKey) || rawKey.length > 255) {
      throw new WireError(CodeProtocol, `header key ${JSON.stringify(rawKey)}: want 1 to 255 token characters (letters, digits, !#$%&'*+-.^_\`|~)`);
    }
    const key = canonicalKey(rawKey);
    const v = utf8.encode(value);
    checkValueBytes(key, v);
    n += 1 + key.length + 2 + v.length;
    enc.push({ key, k: utf8.encode(key), v, i });
  }
  if (n > maxHeaderBlock) throw new WireError(CodeTooLarge, `a header block of ${n} bytes is over ${maxHeaderBlock}`);
  enc.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.i - b.i));
  const b = new Uint8Array(2 + n);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, n);
  dv.setUint16(2, enc.length);
  let off = 4;
  for (const f of enc) {
    b[off++] = f.k.length;
    b.set(f.k, off);
    off += f.k.length;
    dv.setUint16(off, f.v.length);
    off += 2;
    b.set(f.v, off);
    off += f.v.length;
  }
  return b;
}

/**
 * parseHeaderBlock reads the header block at p[off:]: its fields, keys
 * canonicalized, and the offset just past it. A truncated or malformed
 * block throws a WireError (protocol).
 */
export function parseHeaderBlock(p: Uint8Array, off = 0): { fields: [string, string][]; end: number } {
  if (p.length - off < 2) throw new WireError(CodeProtocol, `header block: ${p.length - off} bytes, shorter than its 2-byte length`);
  const n = (p[off]! << 8) | p[off + 1]!;
  const fields: [string, string][] = [];
  if (n === 0) return { fields, end: off + 2 };
  if (n > maxHeaderBlock) throw new WireError(CodeTooLarge, `header block of ${n} bytes is over ${maxHeaderBlock}`);
  const start = off + 2;
  const end = start + n;
  if (end > p.length) throw new WireError(CodeProtocol, `header block of ${n} bytes, ${p.length - start} left in the frame`);
  if (n < 2) throw new WireError(CodeProtocol, `header block of ${n} bytes has no field count`);
  const count = (p[start]! << 8) | p[start + 1]!;
  if (count === 0) throw new WireError(CodeProtocol, `header block of ${n} bytes with no field`);
  let i = start + 2;
  for (let f = 0; f < count; f++) {
    if (i + 1 > end) throw new WireError(CodeProtocol, `header block: field ${f + 1} of ${count} missing`);
    const kl = p[i]!;
    if (kl === 0) throw new WireError(CodeProtocol, 'header key of 0 bytes');
    if (i + 1 + kl + 2 > end) throw new WireError(CodeProtocol, `header block: field ${f + 1} truncated`);
    let key = '';
    for (let j = i + 1; j < i + 1 + kl; j++) {
      const c = p[j]!;
      if (!isTokenChar(c)) throw new WireError(CodeProtocol, `header key: byte 0x${c.toString(16)} is not a token character`);
      key += String.fromCharCode(c);
    }
    key = canonicalKey(key);
    const vl = (p[i + 1 + kl]! << 8) | p[i + 2 + kl]!;
    const vs = i + 3 + kl;
    if (vs + vl > end) throw new WireError(CodeProtocol, `header block: the value of ${key} truncated`);
    const v = p.subarray(vs, vs + vl);
    checkValueBytes(key, v);
    let value: string;
    try {
      value = utf8Strict.decode(v);
    } catch {
      throw new WireError(CodeProtocol, `header ${key}: the value is not UTF-8`);
    }
    fields.push([key, value]);
    i = vs + vl;
  }
  if (i !== end) throw new WireError(CodeProtocol, `header block: ${end - i} bytes after its ${count} fields`);
  return { fields, end };
}

/** checkAppCode throws a WireError unless code is an application error code: "" or 1 to 64 token characters. */
export function checkAppCode(code: string): void {
  if (code === '') return;
  if (code.length > maxAppCode) throw new WireError(CodeProtocol, `application error code of ${code.length} bytes: at most ${maxAppCode}`);
  if (!isToken(code)) throw new WireError(CodeProtocol, `application error code ${JSON.stringify(code)}: want token characters (letters, digits, !#$%&'*+-.^_\`|~)`);
}

/**
 * errorPayload3 is a version-3 error payload (section 23.2): code, the
 * application code, a header block (encoded, or noHeaders) and the message
 * cut to fit one frame. appCode is checked by the caller (checkAppCode).
 */
export function errorPayload3(code: number, message: string, appCode = '', block: Uint8Array = noHeaders): Uint8Array {
  const a = utf8.encode(appCode);
  let m = utf8.encode(message);
  const room = maxFramePayload - 3 - a.length - block.length;
  if (m.length > room) {
    let n = Math.max(0, room);
    while (n > 0 && (m[n]! & 0xc0) === 0x80) n--;
    m = m.subarray(0, n);
  }
  const b = new Uint8Array(3 + a.length + block.length + m.length);
  new DataView(b.buffer).setUint16(0, code);
  b[2] = a.length;
  b.set(a, 3);
  b.set(block, 3 + a.length);
  b.set(m, 3 + a.length + block.length);
  return b;
}

/** parseError3 reads a version-3 error payload. */
export function parseError3(p: Uint8Array): { code: number; appCode: string; headers: [string, string][]; message: string } {
  if (p.length < 3) throw new WireError(CodeProtocol, `v3 error payload of ${p.length} bytes is shorter than its code and application code length`);
  const code = (p[0]! << 8) | p[1]!;
  const al = p[2]!;
  if (p.length < 3 + al) throw new WireError(CodeProtocol, `v3 error payload: an application code of ${al} bytes, ${p.length - 3} left`);
  let appCode = '';
  for (let i = 3; i < 3 + al; i++) appCode += String.fromCharCode(p[i]!);
  checkAppCode(appCode);
  const { fields, end } = parseHeaderBlock(p, 3 + al);
  let message: string;
  try {
    message = utf8Strict.decode(p.subarray(end));
  } catch {
    throw new WireError(CodeProtocol, 'an error message that is not UTF-8');
  }
  return { code, appCode, headers: fields, message };
}

/** parseErrorVersion reads an error payload in the layout of the version its frame header carries. */
export function parseErrorVersion(version: number, p: Uint8Array): { code: number; appCode: string; headers: [string, string][]; message: string } {
  if (version >= version3) return parseError3(p);
  const e = parseError(p);
  return { code: e.code, appCode: '', headers: [], message: e.message };
}
