// The codec against the golden frames the Go codec's tests read too
// (testdata/frames.json), every truncated header, and channel IDs equal to
// Go's ChannelFromName.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeHeader, encodeHeader, headerSize, parseCredit, parseError, errorPayload, joinPayload, WireError } from '../dist/wire.js';
import { formatUUID, parseUUID, channelFromName } from '../dist/uuid.js';
import { repo } from './helpers.mjs';

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
      // Version 3's payloads (section 23): this client does not speak v3
      // yet, so their bytes are all it checks.
      case 'headers': case 'error3': assert.equal(hex(p), f.payload.hex, f.name); break;
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
