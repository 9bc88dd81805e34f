// bench: the Go CLI's `socketbus bench` workloads, with the Node client, so
// that the two can be compared on the same server:
//   node scripts/bench.mjs HOST:PORT [lat,tput,large] [--count N] [--duration S] [--large-count N]
// lat: 1 requester, 1 responder, 128 B each way, one at a time; tput: 32
// requesters, 4 responders, 128 B, closed loops; large: 16 MiB each way.
import { connect, channelFromName } from '../dist/index.js';

const args = process.argv.slice(2);
const addr = args[0] ?? '127.0.0.1:7411';
const workloads = (args[1] && !args[1].startsWith('--') ? args[1] : 'lat,tput,large').split(',');
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : def; };
const count = opt('count', 2000), duration = opt('duration', 3), largeCount = opt('large-count', 3);

async function clients(n, channel) {
  return Promise.all(Array.from({ length: n }, () => connect({ servers: [addr], channel })));
}

async function responders(n, channel, echo) {
  const cs = await clients(n, channel);
  const ac = new AbortController();
  const served = cs.map((c) => c.serve(async (req) => {
    const b = await req.bytes();
    await req.respond(echo ? b : new Uint8Array(128));
  }, { signal: ac.signal }));
  return async () => { ac.abort(); await Promise.all(served); await Promise.all(cs.map((c) => c.close())); };
}

const fresh = (w) => channelFromName(`js-bench-${w}-${process.pid}-${Date.now()}`);

if (workloads.includes('lat')) {
  const ch = fresh('lat');
  const stop = await responders(1, ch, false);
  const [c] = await clients(1, ch);
  const body = new Uint8Array(128);
  for (let i = 0; i < 200; i++) await c.call(body);
  const ts = [];
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    await c.call(body);
    ts.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  ts.sort((a, b) => a - b);
  const q = (p) => ts[Math.min(ts.length - 1, Math.floor(p * ts.length))].toFixed(0);
  console.log(`lat    ${count} round trips: p50 ${q(0.5)} µs, p99 ${q(0.99)} µs`);
  await c.close();
  await stop();
}

if (workloads.includes('tput')) {
  const ch = fresh('tput');
  const stop = await responders(4, ch, false);
  const cs = await clients(32, ch);
  const body = new Uint8Array(128);
  let n = 0, running = true;
  const loops = cs.map(async (c) => { while (running) { await c.call(body); n++; } });
  await new Promise((r) => setTimeout(r, 500));
  const n0 = n, t0 = Date.now();
  await new Promise((r) => setTimeout(r, duration * 1000));
  const rate = (n - n0) / ((Date.now() - t0) / 1000);
  running = false;
  await Promise.all(loops);
  console.log(`tput   32 requesters, 4 responders: ${rate.toFixed(0)} req/s`);
  await Promise.all(cs.map((c) => c.close()));
  await stop();
}

if (workloads.includes('large')) {
  const ch = fresh('large');
  const stop = await responders(1, ch, true);
  const [c] = await clients(1, ch);
  const body = new Uint8Array(16 << 20);
  await c.call(body, { timeout: 120000 });
  const t0 = Date.now();
  for (let i = 0; i < largeCount; i++) await c.call(body, { timeout: 120000 });
  const secs = (Date.now() - t0) / 1000;
  console.log(`large  16 MiB each way x${largeCount}: ${(largeCount * 16 * 2 ** 20 / 1e6 / secs).toFixed(0)} MB/s (one way)`);
  await c.close();
  await stop();
}
