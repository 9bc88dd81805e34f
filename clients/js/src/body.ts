// Bodies: an inbound body is a ReadableStream fed by frames, which grants
// credit back as the application reads; an outbound body is pumped from a
// Uint8Array or ReadableStream into chunks within the credit the peer gave.

import { SocketbusError } from './errors.js';
import { maxFramePayload, streamWindow } from './wire.js';

/**
 * InboundBody is a body arriving in frames. The stream pulls one chunk at a
 * time, so what is counted as consumed is what the application has read;
 * consumption is granted back in half-window steps.
 */
export class InboundBody {
  readonly stream: ReadableStream<Uint8Array>;
  private queue: Uint8Array[] = [];
  private ended = false;
  private failed: unknown;
  private wake: (() => void) | undefined;
  private consumed = 0;
  private credit: number;
  private discarding = false;
  /** The reader grants once it has consumed half the window. */
  private readonly threshold: number;

  /**
   * credit is the peer's implicit credit (bytes it may send before a
   * grant); grant sends a credit frame; onCancel runs when the reader
   * cancels the stream. window is the connection's announced window: when
   * it is larger than the implicit credit, the difference goes with the
   * first grant, once the reader has consumed a piece (open; a pushed
   * request opens its window when taken instead).
   */
  constructor(credit: number, private readonly grant: (n: number) => void, onCancel?: (reason: unknown) => void,
    window = streamWindow, open = false) {
    this.credit = credit;
    this.threshold = window / 2;
    if (open && window > credit) this.consumed = window - credit;
    this.stream = new ReadableStream<Uint8Array>({
      pull: (controller) => this.pull(controller),
      cancel: (reason) => {
        this.discarding = true;
        const n = this.queue.reduce((a, b) => a + b.length, 0);
        this.queue = [];
        this.consumedBytes(n);
        onCancel?.(reason);
      },
    }, { highWaterMark: 0 });
  }

  /** granted counts credit given to the peer outside this body's reads (a take). */
  granted(n: number): void {
    this.credit += n;
  }

  /** push adds bytes that arrived; false if they exceed the credit given. */
  push(b: Uint8Array): boolean {
    if (this.ended) return true;
    this.credit -= b.length;
    if (this.credit < 0) return false;
    if (b.length === 0) return true;
    if (this.discarding) {
      this.consumedBytes(b.length);
      return true;
    }
    this.queue.push(b);
    this.wake?.();
    return true;
  }

  /** end marks the body complete. */
  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** fail ends the body with an error, after the bytes already queued. */
  fail(err: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failed = err ?? new SocketbusError('aborted', 'socketbus: body aborted');
    this.wake?.();
  }

  private async pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    for (;;) {
      const b = this.queue.shift();
      if (b !== undefined) {
        controller.enqueue(b);
        this.consumedBytes(b.length);
        return;
      }
      if (this.ended) {
        if (this.failed !== undefined) controller.error(this.failed);
        else controller.close();
        return;
      }
      await new Promise<void>((resolve) => { this.wake = resolve; });
      this.wake = undefined;
    }
  }

  private consumedBytes(n: number): void {
    this.consumed += n;
    if (this.consumed >= this.threshold && !this.ended) {
      const g = this.consumed;
      this.consumed = 0;
      this.credit += g;
      this.grant(g);
    }
  }
}

/** readAll reads a stream to its end into one array. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  const r = stream.getReader();
  for (;;) {
    const { done, value } = await r.read();
    if (done) break;
    parts.push(value);
    n += value.length;
  }
  return concat(parts, n);
}

/** concat joins parts (of total length n). */
export function concat(parts: Uint8Array[], n = parts.reduce((a, b) => a + b.length, 0)): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

/** Credit is the credit an outbound body holds, and a wait for more. */
export class Credit {
  private waiter: (() => void) | undefined;
  private stopped: unknown;

  constructor(public available: number) {}

  add(n: number): void {
    this.available += n;
    this.waiter?.();
  }

  /** stop ends every wait: the stream is over (err says why). */
  stop(err: unknown): void {
    if (this.stopped === undefined) this.stopped = err ?? new Error('stopped');
    this.waiter?.();
  }

  get isStopped(): boolean {
    return this.stopped !== undefined;
  }

  /** wait resolves when there is credit, or throws once stopped. */
  async wait(): Promise<void> {
    while (this.available <= 0 && this.stopped === undefined) {
      await new Promise<void>((resolve) => { this.waiter = resolve; });
      this.waiter = undefined;
    }
    if (this.stopped !== undefined) throw this.stopped;
  }
}

/** BodySource reads an outbound body, Uint8Array or stream, a piece at a time. */
export class BodySource {
  private reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  private whole: Uint8Array | undefined;
  private pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;

  constructor(body: Uint8Array | ReadableStream<Uint8Array> | null | undefined) {
    if (body instanceof ReadableStream) this.reader = body.getReader();
    else this.whole = body ?? new Uint8Array(0);
  }

  /**
   * prefix reads up to limit bytes and reports whether that is the whole
   * body. It stops early, short of limit, when the stream does not give
   * its next piece within the current turn: a stream that trickles is
   * sent as it comes, not held back to learn whether it is small.
   */
  async prefix(limit: number): Promise<{ parts: Uint8Array[]; n: number; done: boolean }> {
    if (this.whole !== undefined) {
      const w = this.whole;
      if (w.length <= limit) {
        this.whole = new Uint8Array(0);
        this.reader = undefined;
        return { parts: [w], n: w.length, done: true };
      }
      return { parts: [], n: 0, done: false };
    }
    const parts: Uint8Array[] = [];
    let n = 0;
    for (let first = true; ; first = false) {
      const p = this.pending ?? this.reader!.read();
      this.pending = undefined;
      const r = first ? await p : await Promise.race([p, nextTurn()]);
      if (r === undefined) {
        this.pending = p;
        return { parts, n, done: false };
      }
      if (r.done) return { parts, n, done: true };
      parts.push(r.value);
      n += r.value.length;
      if (n > limit) return { parts, n, done: false };
    }
  }

  /** next returns the next piece of the body, or undefined at its end. */
  async next(): Promise<Uint8Array | undefined> {
    if (this.whole !== undefined) {
      const w = this.whole;
      this.whole = undefined;
      return w.length > 0 ? w : undefined;
    }
    if (!this.reader) return undefined;
    const p = this.pending ?? this.reader.read();
    this.pending = undefined;
    const r = await p;
    return r.done ? undefined : r.value;
  }

  /** cancel stops reading a stream body. */
  cancel(reason: unknown): void {
    this.reader?.cancel(reason).catch(() => {});
  }
}

function nextTurn(): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), 0));
}

/**
 * pumpChunks sends the parts already read, then the rest of src, in chunks
 * of at most one frame and the credit held; it returns once the body has
 * ended (the caller sends the end frame). An empty body sends one empty
 * chunk.
 */
export async function pumpChunks(parts: Uint8Array[], src: BodySource, credit: Credit,
  sendChunk: (b: Uint8Array) => void): Promise<void> {
  let sent = false;
  let i = 0;
  for (;;) {
    let piece = i < parts.length ? parts[i++] : await src.next();
    if (piece === undefined) break;
    while (piece.length > 0) {
      await credit.wait();
      const n = Math.min(piece.length, credit.available, maxFramePayload);
      credit.available -= n;
      sendChunk(piece.subarray(0, n));
      sent = true;
      piece = piece.subarray(n);
    }
  }
  if (!sent) sendChunk(new Uint8Array(0));
}
