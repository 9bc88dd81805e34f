// A published request (start|receive|publish) at a serve handler, on a
// recording connection: whatever the handler does, it answers with one
// empty whole response and never with a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InRequest, ServeState } from '../dist/incoming.js';
import { FlagReceive, FlagPublish, FlagResponse, TypeStart, TypeError } from '../dist/wire.js';

/** recorder is the part of a Conn an InRequest uses, keeping the frames it is given. */
function recorder() {
  const frames = [];
  return {
    frames,
    closed: false,
    header: (type, flags, requestId, seq = 0, final = false) => ({ type, flags, requestId, seq, final }),
    frame: (h, payload, prefix) => frames.push({ type: h.type, flags: h.flags, final: h.final, bytes: (prefix?.length ?? 0) + (payload?.length ?? 0) }),
    errorPayload: () => new Uint8Array(3),
  };
}

const handlers = {
  'answers nothing': async () => {},
  'responds with a body': async (req) => { await req.respond(new Uint8Array(100)); },
  'responds with a stream': async (req) => { await req.respond(new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(1 << 20)); } })); },
  'fails': async (req) => { await req.fail('nobody reads this', 'nope'); },
  'throws': async () => { throw new Error('nobody reads this'); },
};

for (const [what, handler] of Object.entries(handlers)) {
  test(`a published request whose handler ${what} gets one empty response`, async () => {
    const conn = recorder();
    const st = new ServeState(handler, 1, () => conn);
    const h = { type: TypeStart, flags: FlagReceive | FlagPublish, clientId: new Uint8Array(16), timeout: 0, final: true };
    const req = new InRequest(conn, new Uint8Array(16).fill(7), h, [], new Uint8Array([1, 2, 3]), () => {}, true);
    assert.equal(req.published, true);
    await st.run(req);
    const answers = conn.frames.filter((f) => f.flags === FlagResponse || f.type === TypeError);
    assert.deepEqual(answers, [{ type: TypeStart, flags: FlagResponse, final: true, bytes: 2 }], `${what}: ${JSON.stringify(conn.frames)}`);
  });
}

test('an ordinary request whose handler answers nothing is failed (unanswered)', async () => {
  const conn = recorder();
  const st = new ServeState(async () => {}, 1, () => conn);
  const h = { type: TypeStart, flags: FlagReceive, clientId: new Uint8Array(16), timeout: 0, final: true };
  const req = new InRequest(conn, new Uint8Array(16).fill(7), h, [], new Uint8Array(0), () => {});
  assert.equal(req.published, false);
  await st.run(req);
  assert.deepEqual(conn.frames.filter((f) => f.flags === FlagResponse).map((f) => f.type), [TypeError]);
});
