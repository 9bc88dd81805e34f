// Headers between the API (fetch's Headers and HeadersInit) and the wire's
// header fields (docs/PROTOCOL.md section 23.1).

import { SocketbusError } from './errors.js';
import { WireError, headerBlock, noHeaders, type HeaderFields } from './wire.js';

/**
 * fieldsOf lists init's fields in order, one per value, without going
 * through a Headers object (whose values are byte strings): a record or
 * [key, value] pairs may hold any UTF-8. Keys are kept as given.
 */
export function fieldsOf(init: HeadersInit | undefined): [string, string][] {
  if (init === undefined || init === null) return [];
  const out: [string, string][] = [];
  if (typeof Headers !== 'undefined' && init instanceof Headers) {
    init.forEach((v, k) => { out.push([k, v]); });
  } else if (Array.isArray(init) || (typeof (init as Iterable<unknown>)[Symbol.iterator] === 'function')) {
    for (const pair of init as Iterable<readonly string[]>) {
      if (pair.length !== 2) throw new SocketbusError('invalid', 'socketbus: invalid header: each header must be a [key, value] pair');
      out.push([String(pair[0]), String(pair[1])]);
    }
  } else {
    for (const [k, v] of Object.entries(init as Record<string, string>)) out.push([k, String(v)]);
  }
  return out;
}

/**
 * encodeHeaders is the header block of init: the shared 2-byte empty block
 * when there are none. A key that is not a token or a value with NUL, CR
 * or LF fails with SocketbusError "invalid" (too many bytes: "too_large").
 */
export function encodeHeaders(init: HeadersInit | undefined, what: string): Uint8Array {
  if (init === undefined) return noHeaders;
  return encodeFields(fieldsOf(init), what);
}

/** encodeFields is encodeHeaders over fields. */
export function encodeFields(fields: HeaderFields, what: string): Uint8Array {
  if (fields.length === 0) return noHeaders;
  try {
    return headerBlock(fields);
  } catch (e) {
    if (e instanceof WireError) {
      throw new SocketbusError(e.code === 3 ? 'too_large' : 'invalid', `socketbus: invalid ${what} header: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/**
 * toHeaders makes a Headers of fields read from the wire. A value a
 * Headers cannot hold (characters beyond Latin-1) is kept as the byte
 * string of its UTF-8, as fetch keeps an HTTP header's bytes.
 */
export function toHeaders(fields: readonly (readonly [string, string])[]): Headers {
  const h = new Headers();
  for (const [k, v] of fields) {
    try {
      h.append(k, v);
    } catch {
      let s = '';
      for (const c of new TextEncoder().encode(v)) s += String.fromCharCode(c);
      h.append(k, s);
    }
  }
  return h;
}
