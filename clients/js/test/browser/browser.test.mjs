// The browser build in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core): a page served from a loopback HTTP server
// loads dist/browser.js, calls a Go responder, serves a handler the Go CLI
// reaches, streams 16 MiB up and back byte-exact; a page from an origin
// the server does not allow cannot connect.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer, startReceiver, send } from '../helpers.mjs';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');

/** pageServer serves an empty page and dist/browser.js on a loopback port. */
async function pageServer() {
  const srv = createServer((req, res) => {
    if (req.url === '/browser.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(readFileSync(join(dist, 'browser.js')));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>socketbus</title><p>socketbus browser test</p>');
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  after(() => srv.close());
  return `http://127.0.0.1:${srv.address().port}`;
}

test('the browser build in headless Chromium', async () => {
  const allowed = await pageServer();
  const other = await pageServer();
  const bus = await startServer('--websocket-origins', allowed);
  await startReceiver(bus.addr, 'web-upper', 'tr a-z A-Z');
  await startReceiver(bus.addr, 'web-echo', 'cat');

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  after(() => browser.close());
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`page: ${m.text()}`));
  await page.goto(allowed + '/');

  // A call to a Go responder.
  const upper = await page.evaluate(async (ws) => {
    const sb = await import('/browser.js');
    const c = await sb.connect({ servers: [ws], channel: sb.channelFromName('web-upper') });
    const out = new TextDecoder().decode(await c.call(new TextEncoder().encode('hello from a browser')));
    await c.close();
    return out;
  }, bus.ws);
  assert.equal(upper, 'HELLO FROM A BROWSER');

  // A handler in the page, reached by the Go CLI.
  await page.evaluate(async (ws) => {
    const sb = await import('/browser.js');
    const c = await sb.connect({ servers: [ws], channel: sb.channelFromName('web-serve') });
    globalThis.served = c.serve(async (req) => {
      const body = new TextDecoder().decode(await req.bytes());
      await req.respond(new TextEncoder().encode(`browser got: ${body}`));
    });
    globalThis.serving = c;
  }, bus.ws);
  const res = await send(bus.addr, 'web-serve', 'a request from Go');
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.toString(), 'browser got: a request from Go');
  await page.evaluate(async () => { await globalThis.serving.close(); await globalThis.served; });

  // 16 MiB up and back, byte-exact, streamed both ways.
  const big = await page.evaluate(async (ws) => {
    const sb = await import('/browser.js');
    const c = await sb.connect({ servers: [ws], channel: sb.channelFromName('web-echo') });
    const total = 16 << 20;
    const at = (i) => (i * 31 + (i >> 12)) & 0xff;
    let produced = 0;
    const body = new ReadableStream({
      pull(ctl) {
        if (produced >= total) { ctl.close(); return; }
        const n = Math.min(64 << 10, total - produced);
        const b = new Uint8Array(n);
        for (let i = 0; i < n; i++) b[i] = at(produced + i);
        produced += n;
        ctl.enqueue(b);
      },
    }, { highWaterMark: 0 });
    const t0 = performance.now();
    const res = await c.send(body, { timeout: 120000 });
    const r = res.body.getReader();
    let got = 0, bad = -1;
    for (;;) {
      const { done, value } = await r.read();
      if (done) break;
      for (let i = 0; i < value.length && bad < 0; i++) if (value[i] !== at(got + i)) bad = got + i;
      got += value.length;
    }
    const ms = performance.now() - t0;
    await c.close();
    return { got, bad, ms };
  }, bus.ws);
  console.log(`browser: 16 MiB up and back through receive --exec cat in ${(big.ms / 1000).toFixed(2)} s`);
  assert.equal(big.bad, -1, `first wrong byte at ${big.bad}`);
  assert.equal(big.got, 16 << 20);

  // A page from an origin the server does not allow.
  const page2 = await browser.newPage();
  await page2.goto(other + '/');
  const refused = await page2.evaluate(async (ws) => {
    const sb = await import('/browser.js');
    try {
      const c = await sb.connect({ servers: [ws], channel: sb.channelFromName('web-upper'), reconnect: { maxAttempts: -1 } });
      await c.close();
      return 'connected';
    } catch (e) {
      return `${e.name} ${e.code}`;
    }
  }, bus.ws);
  assert.equal(refused, 'SocketbusError disconnected');
});
