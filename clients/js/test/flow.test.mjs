// Flow control: 64 MiB each way through a slow reader. The bytes the
// source has produced and the reader not yet consumed stay within the
// windows on the way (the sender's credit, the server's window, the
// receiver's window: three stream windows, about 800 KiB with 256 KiB
// windows), whatever the body's size. Run with the protocol's implicit
// window (--stream-window 256KiB) and with the default announced one
// (1 MiB), the bound twice the three windows in each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, channelFromName } from '../dist/index.js';
import { startServer } from './helpers.mjs';

const total = 64 << 20;

/** source streams total bytes, counting what it produced, only as it is pulled. */
function source(counter) {
  return new ReadableStream({
    pull(c) {
      if (counter.produced >= total) { c.close(); return; }
      const n = Math.min(64 << 10, total - counter.produced);
      const b = new Uint8Array(n);
      b[0] = counter.produced & 0xff; // position check
      c.enqueue(b);
      counter.produced += n;
    },
  }, { highWaterMark: 0 });
}

/** slowRead reads stream, sleeping every MiB, and tracks the bytes in flight. */
async function slowRead(stream, counter) {
  const r = stream.getReader();
  let got = 0, sinceSleep = 0;
  for (;;) {
    const { done, value } = await r.read();
    if (done) break;
    if (value.length > 0 && got % (64 << 10) === 0) assert.equal(value[0], got & 0xff, `byte at ${got}`);
    got += value.length;
    counter.consumed = got;
    counter.maxInFlight = Math.max(counter.maxInFlight, counter.produced - got);
    sinceSleep += value.length;
    if (sinceSleep >= 1 << 20) { sinceSleep = 0; await new Promise((r) => setTimeout(r, 15)); }
  }
  return got;
}

for (const [window, args] of [[256 << 10, ['--stream-window', '256KiB']], [1 << 20, []]]) {
test(`64 MiB up and 64 MiB back through slow readers, within ${window >> 10} KiB windows`, async () => {
  const bound = 2 * 3 * window; // 1.5 MiB with 256 KiB windows
  const srv = await startServer(...args);
  const channel = channelFromName(`js-flow-${window}`);
  const a = await connect({ servers: [srv.addr], channel });
  const b = await connect({ servers: [srv.addr], channel });
  const up = { produced: 0, consumed: 0, maxInFlight: 0 };
  const down = { produced: 0, consumed: 0, maxInFlight: 0 };
  const ac = new AbortController();
  const heap0 = process.memoryUsage();
  let upGot = 0;
  const served = b.serve(async (req) => {
    upGot = await slowRead(req.body, up);
    await req.respond(source(down));
  }, { signal: ac.signal });
  const t0 = Date.now();
  const res = await a.send(source(up), { timeout: 120000 });
  const downGot = await slowRead(res.body, down);
  const secs = (Date.now() - t0) / 1000;
  const heap1 = process.memoryUsage();
  ac.abort();
  await served;
  await a.close();
  await b.close();
  assert.equal(upGot, total);
  assert.equal(downGot, total);
  console.log(`64 MiB up and back in ${secs.toFixed(1)} s; most in flight: up ${up.maxInFlight >> 10} KiB, down ${down.maxInFlight >> 10} KiB; ` +
    `arrayBuffers ${(heap0.arrayBuffers / 2 ** 20).toFixed(1)} -> ${(heap1.arrayBuffers / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(up.maxInFlight <= bound, `request body: ${up.maxInFlight} bytes in flight, want at most ${bound}`);
  assert.ok(down.maxInFlight <= bound, `response body: ${down.maxInFlight} bytes in flight, want at most ${bound}`);
});
}
