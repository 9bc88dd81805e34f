// Reconnection by the Go client's rules: a request a draining server
// refused (no receiver saw it) is sent again, same ID, on the next server;
// a request written to a server that vanished fails with "disconnected".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, channelFromName, SocketbusError } from '../dist/index.js';
import { startServer, startReceiver, send } from './helpers.mjs';

test('a queued request survives a server restart; one in a handler fails disconnected', async () => {
  const first = await startServer('--drain-timeout', '2s');
  const addr = first.addr;
  const channel = channelFromName('js-restart');
  // Its first redial finds no server; the next, 1.5-3 s later, finds the
  // new one with its receiver joined (a request with no peer at all would
  // fail no_peers).
  const a = await connect({ servers: [addr], channel, reconnect: { minDelay: 3000, maxDelay: 3000 } });
  const peer = await connect({ servers: [addr], channel, reconnect: { maxAttempts: -1 } }); // a peer, so the request queues
  const body = new TextEncoder().encode('after the restart');
  const queued = a.call(body, { timeout: 60000 });
  // A body over one frame, kept as a Uint8Array: sent again too.
  const big = new TextEncoder().encode('x'.repeat(100000));
  const queuedBig = a.call(big, { timeout: 60000 });
  await new Promise((r) => setTimeout(r, 200)); // queued at the server, no receiver
  await first.proc.stop(); // SIGTERM: drain ping, server_closed for the queued request, close
  const second = await startServer('--addr', addr);
  assert.equal(second.addr, addr);
  await startReceiver(addr, 'js-restart', 'tr a-z A-Z');
  assert.equal(new TextDecoder().decode(await queued), 'AFTER THE RESTART');
  assert.equal(new TextDecoder().decode(await queuedBig), 'X'.repeat(100000));
  await peer.close().catch(() => {});

  // A request in a handler's hands when its server is killed.
  const b = await connect({ servers: [addr], channel: channelFromName('js-killed'), reconnect: { maxAttempts: 2, minDelay: 50 } });
  await startReceiver(addr, 'js-killed', 'sleep 30');
  const held = b.call(new Uint8Array(10), { timeout: 60000 });
  await new Promise((r) => setTimeout(r, 300));
  second.proc.child.kill('SIGKILL');
  await assert.rejects(held, (e) => e instanceof SocketbusError && e.code === 'disconnected');
  await a.close();
  await b.close();
});

test('serve goes on after a server restart', async () => {
  const first = await startServer('--drain-timeout', '2s');
  const addr = first.addr;
  const s = await connect({ servers: [addr], channel: channelFromName('js-serve-restart'), reconnect: { minDelay: 100, maxDelay: 300 } });
  const ac = new AbortController();
  const served = s.serve(async (req) => { await req.respond(new TextEncoder().encode('served ' + new TextDecoder().decode(await req.bytes()))); },
    { signal: ac.signal, concurrency: 2 });
  let res = await send(addr, 'js-serve-restart', 'one');
  assert.equal(res.stdout.toString(), 'served one', res.stderr);
  await first.proc.stop();
  await startServer('--addr', addr);
  // The serving client rejoins by itself; send until it has.
  for (let i = 0; i < 100; i++) {
    res = await send(addr, 'js-serve-restart', 'two');
    if (res.code === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(res.stdout.toString(), 'served two', res.stderr);
  ac.abort();
  await served;
  await s.close();
});
