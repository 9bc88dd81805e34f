// Interop with the Go CLI, both ways, over TCP: bodies of every size class
// byte-exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, channelFromName } from '../dist/index.js';
import { startServer, startReceiver, send, pattern, equal } from './helpers.mjs';

const sizes = [0, 1, 16383, 16384, 65537, 5 << 20];

test('a Node sender reaches receive --exec (cat), byte-exact', async () => {
  const srv = await startServer();
  await startReceiver(srv.addr, 'js-echo', 'cat', '--concurrency', '4');
  const c = await connect({ servers: [srv.addr], channel: channelFromName('js-echo') });
  try {
    for (const n of sizes) {
      const body = pattern(n, n);
      const got = await c.call(body, { timeout: 60000 });
      assert.ok(equal(got, body), `${n} bytes: got ${got.length} bytes, not the body`);
    }
  } finally {
    await c.close();
  }
});

test('the Go CLI send reaches a Node handler, byte-exact', async () => {
  const srv = await startServer();
  const c = await connect({ servers: [srv.addr], channel: channelFromName('js-serve') });
  const ac = new AbortController();
  const served = c.serve(async (req) => {
    const b = await req.bytes();
    // Answer with the body reversed, so an echo by mistake shows.
    await req.respond(b.slice().reverse());
  }, { signal: ac.signal, concurrency: 4 });
  try {
    for (const n of sizes) {
      const body = pattern(n, n + 7);
      const res = await send(srv.addr, 'js-serve', body, '--timeout', '60s');
      assert.equal(res.code, 0, `send of ${n} bytes: exit ${res.code}: ${res.stderr}`);
      assert.ok(equal(new Uint8Array(res.stdout), body.slice().reverse()), `${n} bytes: got ${res.stdout.length} bytes back, not the body reversed`);
    }
  } finally {
    ac.abort();
    await served;
    await c.close();
  }
});
