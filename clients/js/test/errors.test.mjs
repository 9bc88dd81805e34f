// Errors with their codes, timeouts and aborts that reach the responder,
// and many calls at once (headers: headers.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, channelFromName, SocketbusError, RemoteError } from '../dist/index.js';
import { startServer } from './helpers.mjs';

const srv = await startServer('--max-message-bytes', '1MiB');

/** pair connects a sender and a responder on a fresh channel. */
async function pair(name, servers = [srv.addr]) {
  const channel = channelFromName(name);
  const a = await connect({ servers, channel });
  const b = await connect({ servers, channel });
  return { a, b, close: async () => { await a.close(); await b.close(); } };
}

/** rejects checks that p fails with a SocketbusError of code. */
async function rejects(p, code, cls = SocketbusError) {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof cls, `got ${e}, want a ${cls.name}`);
    assert.equal(e.code, code, `got code ${e.code} (${e.message}), want ${code}`);
    return true;
  });
}

test('no_peers: nobody else on the channel', async () => {
  const c = await connect({ servers: [srv.addr], channel: channelFromName('js-alone') });
  await rejects(c.call(new Uint8Array(1)), 'no_peers');
  await c.close();
});

test('remote: the handler fails or throws', async () => {
  const { a, b, close } = await pair('js-remote');
  const ac = new AbortController();
  const served = b.serve(async (req) => {
    const body = new TextDecoder().decode(await req.bytes());
    if (body === 'fail') await req.fail('no such order');
    else throw new Error('handler broke');
  }, { signal: ac.signal });
  await assert.rejects(a.call(new TextEncoder().encode('fail')), (e) => e instanceof RemoteError && e.code === 'remote' && e.message === 'no such order');
  await rejects(a.call(new TextEncoder().encode('throw')), 'remote', RemoteError);
  ac.abort();
  await served;
  await close();
});

test('too_large: a body over the server\'s --max-message-bytes', async () => {
  const { a, b, close } = await pair('js-large');
  const ac = new AbortController();
  const served = b.serve(async (req) => { await req.respond(await req.bytes()); }, { signal: ac.signal });
  await rejects(a.call(new Uint8Array((1 << 20) + 1)), 'too_large');
  assert.equal((await a.call(new Uint8Array(1 << 20))).length, 1 << 20);
  ac.abort();
  await served;
  await close();
});

test('timeout and abort reach the responder', async () => {
  const { a, b, close } = await pair('js-deadline');
  const ac = new AbortController();
  const reasons = [];
  let ended;
  const served = b.serve(async (req) => {
    // Never answers: waits for the request to end.
    await new Promise((resolve) => req.signal.addEventListener('abort', resolve, { once: true }));
    reasons.push(req.signal.reason.code);
    ended?.();
  }, { signal: ac.signal });
  let done = new Promise((r) => { ended = r; });
  const t0 = Date.now();
  await rejects(a.call(new Uint8Array(10), { timeout: 300 }), 'timeout');
  assert.ok(Date.now() - t0 >= 290, `timed out after ${Date.now() - t0} ms, want 300`);
  await done;
  done = new Promise((r) => { ended = r; });
  const abort = new AbortController();
  const p = a.call(new Uint8Array(100000), { signal: abort.signal });
  setTimeout(() => abort.abort(), 100);
  await rejects(p, 'cancelled');
  await done;
  assert.deepEqual(reasons, ['timeout', 'cancelled']);
  ac.abort();
  await served;
  await close();
});

test('500 concurrent calls', async () => {
  const { a, b, close } = await pair('js-many');
  const ac = new AbortController();
  let peak = 0, running = 0;
  const served = b.serve(async (req) => {
    running++;
    peak = Math.max(peak, running);
    const body = await req.bytes();
    await new Promise((r) => setTimeout(r, 1));
    running--;
    await req.respond(body);
  }, { signal: ac.signal, concurrency: 64 });
  const calls = Array.from({ length: 500 }, (_, i) => a.call(new TextEncoder().encode(`call ${i}`), { timeout: 60000 }));
  const got = await Promise.all(calls);
  got.forEach((g, i) => assert.equal(new TextDecoder().decode(g), `call ${i}`));
  assert.ok(peak <= 64, `${peak} handlers ran at once, want at most the concurrency, 64`);
  ac.abort();
  await served;
  await close();
});

test('over WebSocket too (Node with a WebSocket)', { skip: typeof WebSocket === 'undefined' && 'this Node has no WebSocket' }, async () => {
  const { a, b, close } = await pair('js-ws', [srv.ws]);
  const ac = new AbortController();
  const served = b.serve(async (req) => { await req.respond(await req.bytes()); }, { signal: ac.signal });
  for (const n of [0, 1, 16383, 16384, 65537, 1 << 20]) {
    const body = new Uint8Array(n).map((_, i) => i * 7);
    const got = await a.call(body);
    assert.equal(Buffer.compare(Buffer.from(got), Buffer.from(body)), 0, `${n} bytes over WebSocket`);
  }
  ac.abort();
  await served;
  await close();
});
