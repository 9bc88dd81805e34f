// The codec against the golden frames the Go codec's tests read too
// (testdata/frames.json), every truncated header, and channel IDs equal to
// Go's ChannelFromName.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeHeader, encodeHeader, headerSize, parseCredit, parseError, errorPayload, joinPayload, WireError,
  headerBlock, parseHeaderBlock, errorPayload3, parseError3, canonicalKey, noHeaders,
  FlagAll, FlagPublish, FlagRequest, FlagResponse, FlagCredit, TypeStart, TypeEnd, TypeChunk,
  parseAnnouncement, parseCount, parseReplyCredit, replyCreditPayload, countPayload,
} from '../dist/wire.js';
import { execFileSync } from 'node:child_process';
import { formatUUID, parseUUID, channelFromName } from '../dist/uuid.js';
import { repo, goPeer } from './helpers.mjs';

const golden = JSON.parse(readFileSync(join(repo, 'testdata', 'frames.json'), 'utf8'));
const hex = (b) => Buffer.from(b).toString('hex');
const bytes = (h) => new Uint8Array(Buffer.from(h, 'hex'));

test('golden frames decode to their fields and encode to their bytes', () => {
  assert.ok(golden.frames.length > 0);
  for (const f of golden.frames) {
    const b = bytes(f.hex);
    const h = decodeHeader(b);
    const got = { ...h, requestId: formatUUID(h.requestId), clientId: formatUUID(h.clientId), channelId: formatUUID(h.channelId) };
    assert.deepEqual(got, f.header, f.name);
    const enc = new Uint8Array(headerSize);
    encodeHeader(enc, 0, { ...f.header, requestId: parseUUID(f.header.requestId), clientId: parseUUID(f.header.clientId), channelId: parseUUID(f.header.channelId) });
    assert.equal(hex(enc), f.hex.slice(0, 2 * headerSize), f.name);
    const p = b.subarray(headerSize);
    assert.equal(p.length, f.header.length, f.name);
    switch (f.payload.kind) {
      case 'none': assert.equal(p.length, 0, f.name); break;
      case 'bytes': assert.equal(hex(p), f.payload.hex, f.name); break;
      case 'headers': checkHeaders(f, p); break;
      case 'error3': checkError3(f, p); break;
      case 'credit': assert.equal(parseCredit(p), f.payload.credit, f.name); break;
      case 'error':
        assert.deepEqual(parseError(p), { code: f.payload.code, message: f.payload.message }, f.name);
        assert.equal(hex(errorPayload(f.payload.code, f.payload.message)), hex(p), f.name);
        break;
      case 'join': assert.equal(hex(joinPayload(f.payload.token, f.payload.channelName)), hex(p), f.name); break;
      case 'settings': assert.equal(Buffer.from(p).readBigUInt64BE(0), BigInt(f.payload.maxMessageBytes), f.name); break;
      default: assert.fail(`${f.name}: unknown payload kind ${f.payload.kind}`);
    }
  }
});

/** fieldsOf lists a vector's headers ({key: [values]}) as [key, value] pairs. */
const fieldsOf = (h) => Object.entries(h ?? {}).flatMap(([k, vs]) => vs.map((v) => [k, v]));
/** sorted: fields by key, each key's values in order (a reader must not depend on key order). */
const sorted = (fs) => fs.map((f, i) => [f, i]).sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1])).map(([f]) => f);

/** checkHeaders decodes a v3 start payload (kind headers) and encodes it back. */
function checkHeaders(f, p) {
  assert.equal(hex(p), f.payload.hex, f.name);
  const off = f.payload.receiveId !== undefined ? 16 : 0;
  if (off) assert.equal(formatUUID(p.subarray(0, 16)), f.payload.receiveId, f.name);
  const { fields, end } = parseHeaderBlock(p, off);
  assert.deepEqual(sorted(fields), sorted(fieldsOf(f.payload.headers)), f.name);
  assert.equal(hex(p.subarray(end)), f.payload.bodyHex ?? '', f.name);
  // Encoding: the same bytes, whatever the keys' case and order given.
  const given = fieldsOf(f.payload.headers).reverse().map(([k, v]) => [k.toLowerCase(), v]);
  // Reversing reorders values of one key too; put them back in order.
  const byKey = new Map();
  for (const [k, v] of fieldsOf(f.payload.headers)) byKey.set(k.toLowerCase(), [...(byKey.get(k.toLowerCase()) ?? []), v]);
  const reordered = [...new Set(given.map(([k]) => k))].flatMap((k) => byKey.get(k).map((v) => [k, v]));
  assert.equal(hex(headerBlock(reordered)), hex(p.subarray(off, end)), f.name);
}

/** checkError3 decodes a v3 error payload and encodes it back. */
function checkError3(f, p) {
  assert.equal(hex(p), f.payload.hex, f.name);
  const e = parseError3(p);
  assert.deepEqual(e, { code: f.payload.code, appCode: f.payload.appCode ?? '', headers: fieldsOf(f.payload.headers), message: f.payload.message }, f.name);
  const block = headerBlock(fieldsOf(f.payload.headers));
  assert.equal(hex(errorPayload3(f.payload.code, f.payload.message, f.payload.appCode ?? '', block)), f.payload.hex, f.name);
}

test('v3: the golden vectors include header blocks and v3 errors', () => {
  const kinds = new Set(golden.frames.map((f) => f.payload.kind));
  assert.ok(kinds.has('headers') && kinds.has('error3'));
});

test('v3 header blocks: keys canonicalized as Go does; bad keys, values and blocks refused', () => {
  assert.equal(canonicalKey('trace-id'), 'Trace-Id');
  assert.equal(canonicalKey('X-TAG'), 'X-Tag');
  assert.equal(canonicalKey('content-md5'), 'Content-Md5');
  assert.equal(headerBlock([]), noHeaders);
  assert.equal(headerBlock(undefined), noHeaders);
  assert.equal(hex(noHeaders), '0000');
  // UTF-8 values round-trip.
  const b = headerBlock([['x-name', '日本語 ok']]);
  assert.deepEqual(parseHeaderBlock(b).fields, [['X-Name', '日本語 ok']]);
  for (const [k, v] of [['', 'x'], ['a b', 'x'], ['a:b', 'x'], ['é', 'x'], ['k'.repeat(256), 'x'], ['K', 'a\nb'], ['K', 'a\rb'], ['K', 'a\0b']]) {
    assert.throws(() => headerBlock([[k, v]]), WireError, JSON.stringify([k, v]));
  }
  assert.throws(() => headerBlock([['K', 'x'.repeat(40000)]]), (e) => e instanceof WireError && e.code === 3);
  // Malformed blocks: truncated, a count of 0, bytes left over, a bad key, a value with LF, not UTF-8.
  const good = headerBlock([['A', 'b']]);
  for (let n = 0; n < good.length; n++) assert.throws(() => parseHeaderBlock(good.subarray(0, n)), WireError, `${n} bytes`);
  for (const h of ['00020000', '00080001014100016200', '0006000101200000', '00060001014100010a', '00060001014100 01ff'.replace(' ', '')]) {
    assert.throws(() => parseHeaderBlock(bytes(h)), WireError, h);
  }
  // v3 error payloads: truncated, a bad application code.
  assert.throws(() => parseError3(bytes('000b')), WireError);
  assert.throws(() => parseError3(bytes('000b05616263')), WireError);
  assert.throws(() => parseError3(bytes('000b0161200000')), WireError); // 'a ' is not a token
});

test('invalid headers are refused with their codes; truncated headers are refused', () => {
  for (const f of golden.invalid) {
    assert.throws(() => decodeHeader(bytes(f.hex)), (e) => e instanceof WireError && e.code === f.code, f.name);
  }
  const b = bytes(golden.frames[0].hex);
  for (let n = 0; n < headerSize; n++) assert.throws(() => decodeHeader(b.subarray(0, n)), WireError, `${n} bytes`);
});

test('channelFromName equals Go\'s ChannelFromName', () => {
  assert.equal(channelFromName('orders'), 'c4f5ca52-e057-5046-a6c6-de87154de5b3');
  // Values from Go's socketbus.ChannelFromName.
  assert.equal(channelFromName(''), '5ed5dec5-6fc2-5147-8d7b-871cedc5ab94');
  assert.equal(channelFromName('js-echo'), 'ff915c18-4895-582b-a3e7-c1dbd47117b2');
  assert.equal(channelFromName('日本語 channel'), '5d39337e-a6ec-57d4-ab70-3c9fb3a019ea');
});

test('v3 gathers: the golden frames of gathers and publishes, their payloads through the gather codec', () => {
  const gathers = golden.frames.filter((f) => f.header.flags & (FlagAll | FlagPublish));
  assert.ok(gathers.length > 0, 'testdata/frames.json has no gather vectors');
  const names = [];
  for (const f of gathers) {
    const p = bytes(f.hex).subarray(headerSize);
    const { type, flags } = f.header;
    if ((flags === (FlagRequest | FlagAll) || flags === (FlagRequest | FlagAll | FlagPublish)) && f.header.final && f.payload.kind === 'bytes') {
      if (type === TypeStart) {
        const ids = parseAnnouncement(p);
        assert.equal(ids.length, new DataView(p.buffer, p.byteOffset).getUint32(0), f.name);
        names.push('announcement');
      } else if (type === TypeEnd) {
        assert.equal(hex(countPayload(parseCount(p))), hex(p), f.name);
        names.push('end');
      }
    }
    if (flags === (FlagResponse | FlagAll | FlagCredit)) {
      const { credit, member } = parseReplyCredit(p);
      assert.equal(hex(replyCreditPayload(credit, member)), hex(p), f.name);
      names.push('reply credit');
    }
  }
  for (const want of ['announcement', 'end', 'reply credit']) assert.ok(names.includes(want), `no golden ${want} frame`);
});

test('v3 gathers: the codec accepts exactly the headers the Go codec accepts (every version, type and flags to 0x1ff)', () => {
  const verdicts = JSON.parse(execFileSync(goPeer(), ['headers'], { maxBuffer: 64 << 20 }).toString());
  assert.equal(verdicts.length, 5 * 6 * 0x200);
  const b = new Uint8Array(headerSize);
  const zero = new Uint8Array(16);
  const bad = [];
  for (const [version, type, flags, code] of verdicts) {
    encodeHeader(b, 0, { version, type, flags, requestId: zero, clientId: zero, channelId: zero, timeout: 0, seq: 0, final: true, length: 0 });
    let got = 0;
    try {
      decodeHeader(b);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      got = e.code;
    }
    if (got !== code) bad.push(`v${version} type ${type} flags 0x${flags.toString(16)}: got code ${got}, Go's ${code}`);
  }
  assert.deepEqual(bad.slice(0, 20), [], `${bad.length} headers judged unlike Go's codec`);
});

test('v3 gathers: announcements, counts and reply credit, built and truncated', () => {
  const a = new Uint8Array(16).fill(0xa1), b = new Uint8Array(16).fill(0xb2);
  const ann = new Uint8Array([0, 0, 0, 2, ...a, ...b]);
  assert.deepEqual(parseAnnouncement(ann).map(hex), [hex(a), hex(b)]);
  assert.deepEqual(parseAnnouncement(bytes('00000000')), []);
  for (let n = 0; n < ann.length; n++) assert.throws(() => parseAnnouncement(ann.subarray(0, n)), WireError, `${n} bytes`);
  assert.throws(() => parseAnnouncement(new Uint8Array([...ann, 0])), WireError);
  assert.equal(parseCount(bytes('00000003')), 3);
  for (const h of ['', '000003', '0000000300']) assert.throws(() => parseCount(bytes(h)), WireError, h);
  const rc = replyCreditPayload(1 << 17, a);
  assert.equal(hex(rc), '00020000' + hex(a));
  assert.deepEqual(parseReplyCredit(rc), { credit: 1 << 17, member: a });
  for (let n = 0; n < rc.length; n++) assert.throws(() => parseReplyCredit(rc.subarray(0, n)), WireError, `${n} bytes`);
  assert.throws(() => parseReplyCredit(replyCreditPayload(0, a)), WireError, 'a grant of 0');
  // The gather flags are version 3's: the same headers on version 2 are unknown flags.
  const h = { version: 3, type: TypeChunk, flags: FlagResponse | FlagCredit | FlagAll, requestId: a, clientId: b, channelId: a, timeout: 0, seq: 0, final: false, length: 20 };
  const enc = new Uint8Array(headerSize);
  encodeHeader(enc, 0, h);
  assert.equal(decodeHeader(enc).flags, FlagResponse | FlagCredit | FlagAll);
  encodeHeader(enc, 0, { ...h, version: 2 });
  assert.throws(() => decodeHeader(enc), (e) => e instanceof WireError && e.code === 1);
});
