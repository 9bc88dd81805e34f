// Gather and publish (docs/PROTOCOL.md section 24): a TypeScript member
// reached by a Go sender's gather and publish, and a TypeScript sender
// gathering from Go and TypeScript members, and publishing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, channelFromName, RemoteError, SocketbusError } from '../dist/index.js';
import { startServer, startReceiver, peer, pattern, equal } from './helpers.mjs';

const srv = await startServer();
const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);

/** member connects a TypeScript client on channel name and serves handler on it. */
async function member(name, handler, servers = [srv.addr]) {
  const c = await connect({ servers, channel: channelFromName(name) });
  const ac = new AbortController();
  const served = c.serve(handler, { signal: ac.signal });
  return { c, stop: async () => { ac.abort(); await served; await c.close(); } };
}

test('a TypeScript member takes a Go publish: published, answered or not, and counted', async () => {
  const seen = [];
  const answers = ['respond', 'none', 'fail', 'throw'];
  const members = [];
  for (const how of answers) {
    members.push(await member('js-pub-member', async (req) => {
      seen.push({ how, published: req.published, body: dec(await req.bytes()) });
      if (how === 'respond') await req.respond(enc('ignored'));
      if (how === 'fail') await req.fail('ignored', 'nope');
      if (how === 'throw') throw new Error('ignored');
    }));
  }
  try {
    const res = await peer('publish', srv.addr, 'js-pub-member', 'news');
    assert.equal(res.code, 0, `gopeer publish: exit ${res.code}: ${JSON.stringify(res.lines)} ${res.stderr}`);
    assert.deepEqual(res.lines, [{ took: 4 }]);
    assert.equal(seen.length, 4, `got ${seen.length} deliveries, want 4`);
    for (const s of seen) assert.deepEqual({ published: s.published, body: s.body }, { published: true, body: 'news' }, s.how);
    // The connections are fine after it: an ordinary gather reaches all four.
  } finally {
    for (const m of members) await m.stop();
  }
});

test('a TypeScript member answers a Go gather: its response, headers and failure code reach the Go sender', async () => {
  const ids = {};
  const ok = await member('js-gather-member', async (req) => {
    assert.equal(req.published, false);
    req.responseHeaders.set('X-Who', 'ok');
    await req.respond(enc(`ok:${dec(await req.bytes())}:${req.headers.get('x-tag')}`));
  });
  const bad = await member('js-gather-member', async (req) => {
    req.responseHeaders.set('X-Who', 'bad');
    await req.fail('no such thing', 'not_found');
  });
  ids[ok.c.id] = 'ok';
  ids[bad.c.id] = 'bad';
  try {
    const res = await peer('gather', srv.addr, 'js-gather-member', 'question', '--header', 'X-Tag:t1');
    assert.equal(res.code, 0, `gopeer gather: exit ${res.code}: ${JSON.stringify(res.lines)} ${res.stderr}`);
    const replies = res.lines.filter((l) => !l.end);
    assert.ok(res.lines.at(-1).end);
    assert.equal(replies.length, 2, `got ${replies.length} replies, want 2`);
    const by = Object.fromEntries(replies.map((r) => [ids[r.from], r]));
    assert.deepEqual(by.ok && { body: by.ok.body, who: by.ok.headers['X-Who'], code: by.ok.code },
      { body: 'ok:question:t1', who: ['ok'], code: undefined });
    assert.deepEqual(by.bad && { code: by.bad.code, remoteCode: by.bad.remoteCode, message: by.bad.message, who: by.bad.headers?.['X-Who'] },
      { code: 'remote', remoteCode: 'not_found', message: 'no such thing', who: ['bad'] });
  } finally {
    await ok.stop();
    await bad.stop();
  }
});

/** byCode counts replies by their outcome's code ('ok' for an answer). */
const codes = (replies) => replies.map((r) => r.error?.code ?? 'ok').sort();

test('a TypeScript sender gathers from Go and TypeScript members, one failing with a code; whole and streamed bodies', async () => {
  const name = 'js-gather-sender';
  const goEcho = await startReceiver(srv.addr, name, 'cat', '--concurrency', '4');
  const goFail = await startReceiver(srv.addr, name, 'cat >/dev/null; echo "code: go_refused" >&2; echo refused by go >&2; exit 3', '--concurrency', '4');
  const tsEcho = await member(name, async (req) => {
    req.responseHeaders.set('X-Member', 'ts');
    await req.respond(await req.bytes());
  });
  const tsFail = await member(name, async (req) => {
    await req.bytes();
    await req.fail('refused by ts', 'ts_refused');
  });
  const c = await connect({ servers: [srv.addr], channel: channelFromName(name) });
  try {
    for (const n of [0, 5, 16384, 16385, 300 << 10, 2 << 20]) {
      const body = pattern(n, n + 3);
      const replies = await c.gather(body, { timeout: 60000, headers: { 'X-Size': String(n) } });
      assert.equal(replies.length, 4, `${n} bytes: got ${replies.length} replies, want 4`);
      assert.equal(new Set(replies.map((r) => r.from)).size, 4, `${n} bytes: replies from ${replies.map((r) => r.from)}, want 4 members once each`);
      assert.deepEqual(codes(replies), ['ok', 'ok', 'remote', 'remote'], `${n} bytes`);
      const ts = replies.filter((r) => r.from === tsEcho.c.id || r.from === tsFail.c.id);
      assert.equal(ts.length, 2, `${n} bytes: the TypeScript members' IDs are among the replies`);
      for (const r of replies) {
        if (r.error) {
          assert.ok(r.error instanceof RemoteError, `${n} bytes: ${r.error}`);
          assert.ok(['go_refused', 'ts_refused'].includes(r.error.remoteCode), `remote code ${r.error.remoteCode}`);
          assert.equal(r.body.length, 0);
          if (r.from === tsFail.c.id) assert.deepEqual([r.error.remoteCode, r.error.message], ['ts_refused', 'refused by ts']);
          else assert.equal(r.error.remoteCode, 'go_refused');
        } else {
          assert.ok(equal(r.body, body), `${n} bytes: ${r.from} answered ${r.body.length} bytes, not the body`);
          if (r.from === tsEcho.c.id) assert.equal(r.headers.get('x-member'), 'ts');
        }
      }
    }
    // A body from a stream, under credit, 4 MiB.
    const big = pattern(4 << 20, 9);
    const stream = new ReadableStream({
      start(ctl) { for (let off = 0; off < big.length; off += 100000) ctl.enqueue(big.slice(off, off + 100000)); ctl.close(); },
    });
    const replies = await c.gather(stream, { timeout: 60000 });
    assert.deepEqual(codes(replies), ['ok', 'ok', 'remote', 'remote']);
    for (const r of replies) if (!r.error) assert.ok(equal(r.body, big), `a streamed 4 MiB body: ${r.from} answered ${r.body.length} bytes`);
  } finally {
    await c.close();
    await tsEcho.stop();
    await tsFail.stop();
    await goEcho.stop();
    await goFail.stop();
  }
});

test('a TypeScript sender publishes: the count of members that took it, Go and TypeScript', async () => {
  const name = 'js-publish-sender';
  const goCat = await startReceiver(srv.addr, name, 'cat >/dev/null', '--concurrency', '4');
  const seen = [];
  const ts = [];
  for (let i = 0; i < 3; i++) ts.push(await member(name, async (req) => { seen.push([req.published, dec(await req.bytes())]); }));
  const c = await connect({ servers: [srv.addr], channel: channelFromName(name) });
  try {
    assert.equal(await c.publish(enc('hello all'), { timeout: 30000 }), 4);
    assert.deepEqual(seen, [[true, 'hello all'], [true, 'hello all'], [true, 'hello all']]);
    // Streamed, 1 MiB.
    assert.equal(await c.publish(pattern(1 << 20), { timeout: 30000 }), 4);
    const alone = await connect({ servers: [srv.addr], channel: channelFromName('js-publish-alone') });
    await assert.rejects(alone.publish(enc('x')), (e) => e instanceof SocketbusError && e.code === 'no_peers');
    await assert.rejects(alone.gather(enc('x')), (e) => e instanceof SocketbusError && e.code === 'no_peers');
    await alone.close();
  } finally {
    await c.close();
    for (const m of ts) await m.stop();
    await goCat.stop();
  }
});

test('gather: a member that never answers times out, one that leaves is peer_gone; the others answer', async () => {
  const name = 'js-gather-outcomes';
  const answering = await member(name, async (req) => { await req.respond(enc('here')); });
  const silent = await member(name, async (req) => {
    await new Promise((resolve) => req.signal.addEventListener('abort', resolve, { once: true }));
  });
  let leave;
  const leaving = await member(name, async () => { leave(); await new Promise(() => {}); });
  // close waits up to 2 s for the running handler, then leaves: within the deadline.
  const left = new Promise((r) => { leave = r; }).then(() => leaving.c.close());
  const c = await connect({ servers: [srv.addr], channel: channelFromName(name) });
  try {
    const t0 = Date.now();
    const replies = await c.gather(enc('anyone?'), { timeout: 4000 });
    const took = Date.now() - t0;
    await left;
    const by = Object.fromEntries(replies.map((r) => [r.from, r.error?.code ?? dec(r.body)]));
    assert.deepEqual(by, { [answering.c.id]: 'here', [silent.c.id]: 'timeout', [leaving.c.id]: 'peer_gone' });
    assert.ok(took >= 3900 && took < 4000 + 1900, `the gather took ${took} ms; want about its 4000 ms deadline, not the 2 s grace`);
  } finally {
    await c.close();
    await answering.stop();
    await silent.stop();
  }
});

test('gatherReplies: replies as they arrive; leaving the loop cancels the rest at the members', async () => {
  const name = 'js-gather-iter';
  const fast = await member(name, async (req) => { await req.respond(enc('fast')); });
  let cancelled;
  const gotCancel = new Promise((r) => { cancelled = r; });
  const slow = await member(name, async (req) => {
    await new Promise((resolve) => req.signal.addEventListener('abort', resolve, { once: true }));
    cancelled(req.signal.reason.code);
  });
  const c = await connect({ servers: [srv.addr], channel: channelFromName(name) });
  try {
    const got = [];
    for await (const r of c.gatherReplies(enc('first one wins'), { timeout: 60000 })) {
      got.push(dec(r.body));
      break;
    }
    assert.deepEqual(got, ['fast']);
    assert.equal(await gotCancel, 'cancelled');
    // The sender's own signal cancels it too.
    const ac = new AbortController();
    const p = c.gather(enc('x'), { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(p, (e) => e instanceof SocketbusError && e.code === 'cancelled');
  } finally {
    await c.close();
    await fast.stop();
    await slow.stop();
  }
});

test('gather: a reply over 64 MiB is that member\'s too_large; the others answer and the connection lives', async () => {
  const name = 'js-gather-huge';
  const total = (64 << 20) + (1 << 20);
  const huge = await member(name, async (req) => {
    let sent = 0;
    await req.respond(new ReadableStream({
      pull(c) {
        if (sent >= total) { c.close(); return; }
        c.enqueue(new Uint8Array(64 << 10));
        sent += 64 << 10;
      },
    }, { highWaterMark: 0 })).catch(() => {}); // ended at the deadline: it gets no more credit
  });
  const small = await member(name, async (req) => { await req.respond(enc('small')); });
  const c = await connect({ servers: [srv.addr], channel: channelFromName(name) });
  try {
    const replies = await c.gather(enc('x'), { timeout: 6000 });
    const by = Object.fromEntries(replies.map((r) => [r.from, r.error?.code ?? dec(r.body)]));
    assert.deepEqual(by, { [huge.c.id]: 'too_large', [small.c.id]: 'small' });
    const again = await c.gather(enc('x'), { timeout: 500 }); // the connection still works
    assert.equal(again.length, 2);
  } finally {
    await c.close();
    await huge.stop();
    await small.stop();
  }
});

test('gather and publish over WebSocket (Node with a WebSocket)', { skip: typeof WebSocket === 'undefined' && 'this Node has no WebSocket' }, async () => {
  const name = 'js-gather-ws';
  const seen = [];
  const m1 = await member(name, async (req) => { seen.push(req.published); await req.respond(await req.bytes()); }, [srv.ws]);
  const m2 = await member(name, async (req) => { seen.push(req.published); await req.respond(await req.bytes()); }, [srv.addr]);
  const c = await connect({ servers: [srv.ws], channel: channelFromName(name) });
  try {
    const body = pattern(1 << 20, 5);
    const replies = await c.gather(body, { timeout: 30000 });
    assert.deepEqual(replies.map((r) => r.from).sort(), [m1.c.id, m2.c.id].sort());
    for (const r of replies) assert.ok(equal(r.body, body), `${r.from}: ${r.body.length} bytes`);
    assert.equal(await c.publish(enc('p'), { timeout: 30000 }), 2);
    assert.deepEqual(seen.sort(), [false, false, true, true]);
  } finally {
    await c.close();
    await m1.stop();
    await m2.stop();
  }
});
