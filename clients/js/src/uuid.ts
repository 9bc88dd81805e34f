// UUIDs as the protocol carries them: 16 bytes in RFC 9562 order, shown as
// canonical strings in the API. No runtime dependency: SHA-1 for version 5
// is here, since ChannelFromName must be synchronous and WebCrypto's
// digest is not.

const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** formatUUID returns the canonical string of the 16 bytes at b[off:]. */
export function formatUUID(b: Uint8Array, off = 0): string {
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
    s += hex[b[off + i]!];
  }
  return s;
}

/** idKey is a map key for the 16-byte ID at b[off:] (its hex digits). */
export function idKey(b: Uint8Array, off = 0): string {
  let s = '';
  for (let i = 0; i < 16; i++) s += hex[b[off + i]!];
  return s;
}

/** parseUUID reads a canonical UUID string (hyphens optional). */
export function parseUUID(s: string): Uint8Array {
  const h = s.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(h)) throw new TypeError(`socketbus: not a UUID: ${JSON.stringify(s)}`);
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return b;
}

/** randomUUID returns a random version 4 UUID. */
export function randomUUID(): Uint8Array {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}

/** uuidV5 is the version 5 UUID of name in namespace (RFC 9562). */
export function uuidV5(namespace: Uint8Array, name: Uint8Array): Uint8Array {
  const data = new Uint8Array(16 + name.length);
  data.set(namespace, 0);
  data.set(name, 16);
  const b = sha1(data).subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}

/** The namespace of channel names: uuidV5(URL namespace, "socketbus:channel"). */
const channelNamespace = parseUUID('55c41d59-48f3-54ed-88a3-a83ba985561d');

/**
 * channelFromName returns the channel ID for a name, as a UUID string:
 * the version 5 UUID of its UTF-8 bytes in socketbus's channel namespace,
 * equal to Go's socketbus.ChannelFromName.
 */
export function channelFromName(name: string): string {
  return formatUUID(uuidV5(channelNamespace, new TextEncoder().encode(name)));
}

/** sha1 returns the SHA-1 digest of data (FIPS 180-4). */
export function sha1(data: Uint8Array): Uint8Array {
  const bitLen = data.length * 8;
  const padded = new Uint8Array(((data.length + 9 + 63) >> 6) << 6);
  padded.set(data);
  padded[data.length] = 0x80;
  const dv = new DataView(padded.buffer);
  dv.setUint32(padded.length - 8, Math.floor(bitLen / 2 ** 32));
  dv.setUint32(padded.length - 4, bitLen >>> 0);
  let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
  const w = new Uint32Array(80);
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + 4 * i);
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3]! ^ w[i - 8]! ^ w[i - 14]! ^ w[i - 16]!;
      w[i] = (x << 1) | (x >>> 31);
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    for (let i = 0; i < 80; i++) {
      let f: number, k: number;
      if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
      else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
      else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
      else { f = b ^ c ^ d; k = 0xca62c1d6; }
      const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]!) >>> 0;
      e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
    }
    h0 = (h0 + a) >>> 0; h1 = (h1 + b) >>> 0; h2 = (h2 + c) >>> 0; h3 = (h3 + d) >>> 0; h4 = (h4 + e) >>> 0;
  }
  const out = new Uint8Array(20);
  const ov = new DataView(out.buffer);
  [h0, h1, h2, h3, h4].forEach((h, i) => ov.setUint32(4 * i, h));
  return out;
}
