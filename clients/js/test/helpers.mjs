// Test helpers: the real Go server and CLI, built once per test file from
// the repository (go build), run on loopback ports.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';

export const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
let built;

/** goBinary builds ./cmd/socketbus into a temporary directory, once per process. */
export function goBinary() {
  if (built) return built;
  const dir = mkdtempSync(join(tmpdir(), 'socketbus-js-'));
  const bin = join(dir, 'socketbus');
  execFileSync('go', ['build', '-o', bin, './cmd/socketbus'], { cwd: repo, stdio: 'inherit' });
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  built = bin;
  return bin;
}

let builtPeer;

/** goPeer builds test/gopeer (a Go sender that gathers and publishes), once per process. */
export function goPeer() {
  if (builtPeer) return builtPeer;
  const dir = mkdtempSync(join(tmpdir(), 'socketbus-js-peer-'));
  const bin = join(dir, 'gopeer');
  execFileSync('go', ['build', '-o', bin, './clients/js/test/gopeer'], { cwd: repo, stdio: 'inherit' });
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  builtPeer = bin;
  return bin;
}

/**
 * peer runs gopeer (mode gather or publish) and resolves with its exit
 * code and its JSON lines.
 */
export function peer(mode, addr, channel, body, ...args) {
  return new Promise((resolve, reject) => {
    const child = spawn(goPeer(), [mode, '--server', addr, '--channel', channel, '--body', body, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (b) => { out += b; });
    child.stderr.on('data', (b) => { err += b; });
    child.on('error', reject);
    child.on('exit', (code) => {
      try {
        resolve({ code, lines: out.split('\n').filter((l) => l).map((l) => JSON.parse(l)), stderr: err });
      } catch (e) {
        reject(new Error(`gopeer ${mode}: ${e}: ${out}${err}`));
      }
    });
  });
}

/** Proc is a running process with its output collected. */
class Proc {
  constructor(args, opts = {}) {
    this.child = spawn(goBinary(), args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    this.stdout = '';
    this.stderr = '';
    this.waiters = [];
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    this.child.stdout.on('data', (b) => { this.stdout += b; this.wake(); });
    this.child.stderr.on('data', (b) => { this.stderr += b; this.wake(); });
    this.child.stdin.end();
  }

  wake() {
    for (const w of this.waiters) w();
  }

  /** line waits for a line of stream ('stdout' or 'stderr') containing s and returns it. */
  line(stream, s, ms = 30000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const l = this[stream].split('\n').find((x) => x.includes(s));
        if (l !== undefined) { clearTimeout(t); this.waiters = this.waiters.filter((w) => w !== check); resolve(l); }
      };
      const t = setTimeout(() => reject(new Error(`no line with ${JSON.stringify(s)} on ${stream} in ${ms} ms:\n${this[stream]}`)), ms);
      this.waiters.push(check);
      check();
    });
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

/** startServer runs serve on loopback ports (TCP and WebSocket) until the tests end. */
export async function startServer(...args) {
  const p = new Proc(['serve', '--addr', '127.0.0.1:0', '--websocket', '127.0.0.1:0', '--drain-timeout', '5s', ...args]);
  after(() => p.stop());
  const l = await p.line('stdout', 'socketbus listening on ');
  const ws = (await p.line('stdout', 'socketbus websocket on ')).replace('socketbus websocket on ', '').trim();
  return { proc: p, addr: l.replace('socketbus listening on ', '').trim(), ws };
}

/** startReceiver runs receive --exec cmd on channel until the tests end, once it waits. */
export async function startReceiver(addr, channel, cmd, ...args) {
  const p = new Proc(['receive', '--server', addr, '--channel', channel, '--exec', cmd, ...args]);
  after(() => p.stop());
  await p.line('stderr', 'waiting for requests');
  return p;
}

/** send runs the CLI's send with body on stdin and resolves with its exit code and output. */
export function send(addr, channel, body, ...args) {
  return new Promise((resolve, reject) => {
    const child = spawn(goBinary(), ['send', '--server', addr, '--channel', channel, '--no-progress', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => { err += b; });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.end(Buffer.from(body));
  });
}

/** pattern returns n bytes of a deterministic pattern. */
export function pattern(n, seed = 1) {
  const b = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}

/** equal compares byte arrays. */
export function equal(a, b) {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}
