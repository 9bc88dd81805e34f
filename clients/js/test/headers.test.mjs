// Protocol v3 (docs/PROTOCOL.md section 23): request and response headers
// and remote error codes, both ways with the Go CLI and between Node
// clients, and bad headers refused before anything is sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, channelFromName, SocketbusError, RemoteError } from '../dist/index.js';
import { startServer, startReceiver, send, pattern, equal } from './helpers.mjs';

const srv = await startServer();
const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);

/** pair connects a sender and a responder on a fresh channel. */
async function pair(name) {
  const channel = channelFromName(name);
  const a = await connect({ servers: [srv.addr], channel });
  const b = await connect({ servers: [srv.addr], channel });
  return { a, b, close: async () => { await a.close(); await b.close(); } };
}

test('a Node sender\'s headers reach receive --exec as SOCKETBUS_HEADER_*; its code: line is remoteCode', async () => {
  const cmd = 'if [ -n "$SOCKETBUS_HEADER_FAIL" ]; then echo "code: not_found" >&2; echo "no such order" >&2; exit 1; fi; ' +
    'printf "%s|%s|%s" "$SOCKETBUS_HEADER_TRACE_ID" "$SOCKETBUS_HEADER_X_TAG" "$SOCKETBUS_HEADER_X_NAME"';
  await startReceiver(srv.addr, 'js-h-exec', cmd);
  const c = await connect({ servers: [srv.addr], channel: channelFromName('js-h-exec') });
  try {
    const got = await c.call(enc('x'), { timeout: 30000, headers: [['trace-id', '4bf92f35'], ['X-Tag', 'one'], ['x-tag', 'two'], ['X-Name', '日本語']] });
    assert.equal(dec(got), '4bf92f35|one, two|日本語');
    // A Headers object works too, and a streamed body (over one frame).
    const h = new Headers({ 'Trace-Id': 'abc' });
    const big = pattern(100_000);
    const res = await c.send(new ReadableStream({ start(ctl) { ctl.enqueue(big); ctl.close(); } }), { timeout: 30000, headers: h });
    assert.equal(dec(await new Response(res.body).arrayBuffer()), 'abc||');
    await assert.rejects(c.call(enc('x'), { timeout: 30000, headers: { Fail: '1' } }), (e) => {
      assert.ok(e instanceof RemoteError, String(e));
      assert.equal(e.code, 'remote');
      assert.equal(e.remoteCode, 'not_found');
      assert.match(e.message, /no such order/);
      return true;
    });
  } finally {
    await c.close();
  }
});

test('the Go CLI\'s send -H reaches a Node handler; its response headers and fail code reach send', async () => {
  const c = await connect({ servers: [srv.addr], channel: channelFromName('js-h-serve') });
  const ac = new AbortController();
  const served = c.serve(async (req) => {
    const body = dec(await req.bytes());
    if (body === 'fail') {
      req.responseHeaders.set('Retry-After', '5');
      await req.fail('no such order', 'not_found');
      return;
    }
    req.responseHeaders.set('x-reply', 'yes');
    req.responseHeaders.append('x-reply', 'again');
    await req.respond(enc(`${req.headers.get('trace-id')}|${req.headers.get('x-tag')}`));
  }, { signal: ac.signal });
  try {
    const ok = await send(srv.addr, 'js-h-serve', 'hi', '-H', 'Trace-Id: 4bf92f35', '-H', 'X-Tag: one', '-H', 'X-Tag: two', '--include', '--timeout', '30s');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.toString(), '4bf92f35|one, two');
    assert.match(ok.stderr, /^X-Reply: yes, again$/m);
    const bad = await send(srv.addr, 'js-h-serve', 'fail', '--include', '--timeout', '30s');
    assert.equal(bad.code, 5, bad.stderr);
    assert.match(bad.stderr, /not_found/);
    assert.match(bad.stderr, /no such order/);
  } finally {
    ac.abort();
    await served;
    await c.close();
  }
});

test('Node to Node: headers both ways, whole and streamed; a fail\'s code and headers', async () => {
  const { a, b, close } = await pair('js-h-node');
  const ac = new AbortController();
  const served = b.serve(async (req) => {
    const body = await req.bytes();
    req.responseHeaders.set('X-Got', req.headers.get('x-want') ?? 'none');
    req.responseHeaders.set('X-Len', String(body.length));
    if (req.headers.get('x-fail')) {
      await req.fail('busy', 'retry_later');
      return;
    }
    await req.respond(body);
  }, { signal: ac.signal });
  try {
    for (const n of [0, 5, 70_000]) {
      const body = pattern(n, n + 3);
      const res = await a.send(body, { headers: { 'X-Want': `size ${n}` } });
      assert.equal(res.headers.get('X-Got'), `size ${n}`);
      assert.equal(res.headers.get('x-len'), String(n));
      assert.ok(equal(new Uint8Array(await new Response(res.body).arrayBuffer()), body), `${n} bytes`);
    }
    // No headers: empty both ways.
    const plain = await a.send(enc('p'));
    assert.equal(plain.headers.get('x-got'), 'none');
    await assert.rejects(a.call(enc('x'), { headers: { 'X-Fail': '1' } }), (e) => {
      assert.ok(e instanceof RemoteError, String(e));
      assert.equal(e.remoteCode, 'retry_later');
      assert.equal(e.message, 'busy');
      assert.equal(e.headers.get('x-len'), '1');
      return true;
    });
  } finally {
    ac.abort();
    await served;
    await close();
  }
});

test('bad headers and codes fail with "invalid" and send nothing; the old "unsupported" is gone', async () => {
  const { a, b, close } = await pair('js-h-bad');
  const ac = new AbortController();
  let delivered = 0;
  const seen = [];
  const served = b.serve(async (req) => {
    delivered++;
    try { await req.fail('x', 'not a token'); } catch (e) { seen.push(e.code); }
    req.responseHeaders.set('Content-Type', 'text/plain');
    await req.respond(enc('fine'));
  }, { signal: ac.signal });
  try {
    for (const headers of [{ 'bad key': 'x' }, { 'K': 'a\nb' }, [['K', 'nul\0']], { '': 'x' }, { 'é': 'x' }]) {
      await assert.rejects(a.call(enc('x'), { headers }), (e) => e instanceof SocketbusError && e.code === 'invalid' && /header/.test(e.message),
        JSON.stringify(headers));
    }
    await assert.rejects(a.call(enc('x'), { headers: { K: 'x'.repeat(40000) } }), (e) => e instanceof SocketbusError && e.code === 'too_large');
    assert.equal(delivered, 0, 'a request with a bad header was sent');
    // Headers and codes that v2 refused with "unsupported" now work.
    const res = await a.send(enc('x'), { headers: { 'Trace-Id': 'x' } });
    assert.equal(res.headers.get('content-type'), 'text/plain');
    assert.equal(dec(new Uint8Array(await new Response(res.body).arrayBuffer())), 'fine');
    assert.deepEqual(seen, ['invalid']);
  } finally {
    ac.abort();
    await served;
    await close();
  }
});

test('response headers too large: respond and fail refuse them; the handler\'s throw still fails the request', async () => {
  const { a, b, close } = await pair('js-h-big');
  const ac = new AbortController();
  const seen = [];
  const served = b.serve(async (req) => {
    await req.bytes();
    req.responseHeaders.set('X-Big', 'x'.repeat(40000));
    try { await req.respond(enc('no')); } catch (e) { seen.push(e.code); }
    try { await req.fail('no', 'nope'); } catch (e) { seen.push(e.code); }
    throw new Error('gave up');
  }, { signal: ac.signal });
  try {
    await assert.rejects(a.call(enc('x'), { timeout: 10000 }), (e) => {
      assert.ok(e instanceof RemoteError, String(e));
      assert.equal(e.message, 'gave up');
      assert.equal(e.remoteCode, undefined);
      return true;
    });
    assert.deepEqual(seen, ['too_large', 'too_large']);
  } finally {
    ac.abort();
    await served;
    await close();
  }
});
