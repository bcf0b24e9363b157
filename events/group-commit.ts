/**
 * Group commit: the journal's single writer. Appends are encoded and sealed straight into the
 * pending batch's buffer; a flush writes everything queued with one write() and one fdatasync().
 * Each batch's promise resolves only once its bytes are on disk (after an fdatasync that started
 * after their write completed, when durable), and bytes reach the file in the order batches were
 * queued.
 *
 * Durable flushes are pipelined two deep: batch N+1 is written while batch N's fdatasync is in
 * flight, and its own fdatasync starts once that write is done and fdatasync N has returned. So
 * appenders woken by one flush encode their next records while the disk works on the batch after
 * it, and the bytes not yet synced are always one contiguous tail of the segment (the same crash
 * states as one bigger batch: torn-tail repair covers them).
 *
 * After a failed write or fdatasync the writer refuses every later batch: what the kernel did with
 * the failed pages is unknown (a retried fsync can report success for lost data), so the only safe
 * course is to restart, which repairs the tail.
 *
 * fs calls go through the `fs` module object (not named imports) so tests can count fdatasync calls.
 *
 * @example
 * ```ts
 * const w = new GroupCommitWriter({ dir, durable: true, segmentBytes: 64 << 20, last: null });
 * await w.enqueue(1, [1], ['container.started'], ['c1'], [JSON.stringify({ id: 'c1', at })], undefined);
 * await w.close();
 * ```
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { AtelierError } from '../errors.ts';
import { recordLineMaxBytes, writeRecordLine } from './record.ts';
import { fsyncDir, segmentName } from './segments.ts';

export interface WriterOptions {
  readonly dir: string;
  readonly durable: boolean;
  readonly segmentBytes: number;
  /** The segment to continue appending to (the last one, after repair), or null to start one. */
  readonly last: { readonly path: string; readonly size: number } | null;
}

interface Pending {
  readonly lastSeq: number;
  readonly value: unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** One batch handed from the queue to a flush: its bytes, its first seq and its appenders. */
interface Batch {
  readonly bytes: Buffer;
  readonly firstSeq: number;
  readonly waiters: Pending[];
  /** Its write started a new segment (whose directory entry is synced with it). */
  created: boolean;
}

const INITIAL_BUFFER = 64 * 1024;

function writeAll(fd: number, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const go = (off: number) => {
      fs.write(fd, buf, off, buf.length - off, null, (err, n) => {
        if (err) return reject(err);
        if (off + n < buf.length) return go(off + n);
        resolve();
      });
    };
    go(0);
  });
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

function openAppend(path: string): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, 'a', 0o644, (err, fd) => (err ? reject(err) : resolve(fd))));
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

export class GroupCommitWriter {
  private readonly opts: WriterOptions;
  /** Encoded lines not yet handed to a flush: `buf[0..len)`, first record `firstSeq`. */
  private buf: Buffer = Buffer.allocUnsafe(INITIAL_BUFFER);
  private len = 0;
  private firstSeq = 0;
  private waiters: Pending[] = [];
  /** A flushed buffer, reused for the next batch once its flush is done. */
  private spare: Buffer | null = null;
  private running: Promise<void> | null = null;
  /** Set while the durable drain waits on an fdatasync with nothing to write: an append calls it. */
  private wake: (() => void) | null = null;
  private fd: number | null = null;
  private segPath: string | null;
  private segSize: number;
  private failure: unknown = null;
  private closed = false;
  /** Highest seq known to be on disk. */
  durableSeq = 0;
  /** Flushes done (one write, and one fdatasync when durable, each): for tests and benchmarks. */
  flushes = 0;

  constructor(opts: WriterOptions, durableSeq: number) {
    this.opts = opts;
    this.segPath = opts.last?.path ?? null;
    this.segSize = opts.last?.size ?? 0;
    this.durableSeq = durableSeq;
  }

  /**
   * Queues records `firstSeq..` (types, keys and `JSON.stringify`-ed data, in order): encodes and
   * seals them straight into the pending batch's buffer (no string per line, no copy of the batch),
   * and resolves to `value` once they are on disk.
   */
  enqueue<T>(firstSeq: number, versions: readonly number[], types: readonly string[], keys: readonly string[], dataJson: readonly string[], value: T): Promise<T> {
    if (this.closed) return Promise.reject(closedError(this.opts.dir));
    if (this.failure) return Promise.reject(failedError(this.opts.dir, this.failure));
    if (this.len === 0) this.firstSeq = firstSeq;
    for (let i = 0; i < types.length; i++) {
      const need = this.len + recordLineMaxBytes(types[i], keys[i], dataJson[i]);
      if (need > this.buf.length) this.grow(need);
      this.len = writeRecordLine(this.buf, this.len, firstSeq + i, versions[i], types[i], keys[i], dataJson[i]);
    }
    const lastSeq = firstSeq + types.length - 1;
    return new Promise<T>((resolve, reject) => {
      this.waiters.push({ lastSeq, value, resolve: resolve as (v: unknown) => void, reject });
      // Start on a microtask so appends made in the same tick share the first flush too.
      if (!this.running) this.running = Promise.resolve().then(() => this.drain());
      else if (this.wake !== null) this.wake();
    });
  }

  /** `enqueue` for one record. */
  enqueueOne<T>(seq: number, v: number, type: string, key: string, dataJson: string, value: T): Promise<T> {
    if (this.closed) return Promise.reject(closedError(this.opts.dir));
    if (this.failure) return Promise.reject(failedError(this.opts.dir, this.failure));
    if (this.len === 0) this.firstSeq = seq;
    const need = this.len + recordLineMaxBytes(type, key, dataJson);
    if (need > this.buf.length) this.grow(need);
    this.len = writeRecordLine(this.buf, this.len, seq, v, type, key, dataJson);
    return new Promise<T>((resolve, reject) => {
      this.waiters.push({ lastSeq: seq, value, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) this.running = Promise.resolve().then(() => this.drain());
      else if (this.wake !== null) this.wake();
    });
  }

  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  /** Hands the pending lines to a flush, starting a fresh buffer for the next batch. */
  private take(): Batch {
    const batch: Batch = { bytes: this.buf.subarray(0, this.len), firstSeq: this.firstSeq, waiters: this.waiters, created: false };
    this.buf = this.spare !== null && this.spare.length >= INITIAL_BUFFER ? this.spare : Buffer.allocUnsafe(INITIAL_BUFFER);
    this.spare = null;
    this.len = 0;
    this.waiters = [];
    return batch;
  }

  /**
   * Flushes until nothing is queued. `running` is cleared in the same synchronous step that finds
   * the queue empty, so an append made after that starts a new drain instead of waiting forever.
   */
  private drain(): Promise<void> {
    return this.opts.durable ? this.drainDurable() : this.drainVolatile();
  }

  /** Volatile: write each batch (no fsync) and resolve it. */
  private async drainVolatile(): Promise<void> {
    try {
      while (this.waiters.length > 0) {
        const batch = this.take();
        try {
          await this.open(batch);
          for (let off = 0; off < batch.bytes.length; ) off += fs.writeSync(this.fd!, batch.bytes, off);
          this.segSize += batch.bytes.length;
          this.flushes++;
        } catch (e) {
          this.fail(e, [batch]);
          return;
        }
        this.complete(batch);
      }
    } finally {
      this.running = null;
    }
  }

  /**
   * Durable: a two-stage pipeline. Batch N+1 is written while batch N's fdatasync is in flight;
   * batch N+1's fdatasync starts only once its write has completed and batch N's fdatasync has
   * returned, so every fdatasync covers all the bytes of the batch it resolves (and of every
   * earlier one). At most one write and one fdatasync are in flight, on the same file: a batch
   * that needs a new segment waits until the previous one is synced.
   */
  private async drainDurable(): Promise<void> {
    let inFlight: { batch: Batch; sync: Promise<void> } | null = null;
    let next: Batch | null = null;
    try {
      for (;;) {
        next = null;
        if (this.waiters.length > 0) {
          if (inFlight !== null && this.needsNewSegment(this.len)) {
            // Never close a segment under an fdatasync: finish the previous batch first.
            await inFlight.sync;
            this.complete(inFlight.batch);
            inFlight = null;
          }
          next = this.take();
          next.created = await this.open(next);
          // On a real disk a write can block (dirty-page throttling): keep it off the event loop.
          await writeAll(this.fd!, next.bytes);
          this.segSize += next.bytes.length;
          this.flushes++;
        } else if (inFlight !== null) {
          // Nothing to write: wait for the fdatasync, or for appends to write while it runs.
          if (await this.syncOrAppends(inFlight.sync)) continue;
        }
        if (inFlight !== null) {
          await inFlight.sync;
          this.complete(inFlight.batch);
          inFlight = null;
        }
        if (next === null) {
          // Appends made while the last fdatasync was awaited are flushed by this drain too.
          if (this.waiters.length > 0) continue;
          return;
        }
        // Started only now: after this batch's write completed and the previous fdatasync returned.
        const sync = this.sync(next.created);
        // A failed fdatasync is handled where it is awaited; never leave it unhandled meanwhile.
        sync.catch(() => undefined);
        inFlight = { batch: next, sync };
      }
    } catch (e) {
      const lost: Batch[] = [];
      if (inFlight !== null) lost.push(inFlight.batch);
      if (next !== null && next !== inFlight?.batch) lost.push(next);
      this.fail(e, lost);
    } finally {
      this.running = null;
    }
  }

  /** fdatasync of a written batch (and of the directory, when the batch started a segment). */
  private async sync(created: boolean): Promise<void> {
    const fd = this.fd!;
    await fdatasync(fd);
    // A new segment's directory entry must be durable too, or a crash could lose the whole file.
    if (created) await fsyncDir(this.opts.dir);
  }

  /**
   * Resolves true when appends arrive before `sync` settles (once the appends queued in the same
   * turn have all been made: a batch is not cut after its first record), false when `sync` settles.
   */
  private syncOrAppends(sync: Promise<void>): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let done = false;
      this.wake = () => {
        this.wake = null;
        setImmediate(() => {
          if (!done) {
            done = true;
            resolve(true);
          }
        });
      };
      sync.then(
        () => {
          if (done) return;
          done = true;
          this.wake = null;
          resolve(false);
        },
        () => {
          if (done) return;
          done = true;
          this.wake = null;
          resolve(false);
        },
      );
    });
  }

  private needsNewSegment(bytes: number): boolean {
    return this.segPath === null || (this.segSize > 0 && this.segSize + bytes > this.opts.segmentBytes);
  }

  /** Opens the segment a batch goes to, rolling to a new one past `segmentBytes`; true when it created one. */
  private async open(batch: Batch): Promise<boolean> {
    let created = false;
    if (this.needsNewSegment(batch.bytes.length)) {
      if (this.fd !== null) {
        const old = this.fd;
        this.fd = null;
        await closeFd(old);
      }
      this.segPath = join(this.opts.dir, segmentName(batch.firstSeq));
      this.segSize = 0;
      created = true;
    }
    if (this.fd === null) this.fd = await openAppend(this.segPath!);
    return created;
  }

  /** A batch is on disk: reuse its buffer, advance `durableSeq`, resolve its appends. */
  private complete(batch: Batch): void {
    this.spare = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.buffer.byteLength - batch.bytes.byteOffset);
    const waiters = batch.waiters;
    this.durableSeq = waiters[waiters.length - 1].lastSeq;
    for (const p of waiters) p.resolve(p.value);
  }

  /** A write or fdatasync failed: refuse the batches in flight, everything queued, and every later append. */
  private fail(e: unknown, batches: Batch[]): void {
    this.failure = e;
    const err = failedError(this.opts.dir, e);
    for (const b of batches) for (const p of b.waiters) p.reject(err);
    for (const p of this.waiters) p.reject(err);
    this.waiters = [];
    this.len = 0;
  }

  /** Waits for queued batches to reach disk, then closes the segment. Later enqueues fail with CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running) await this.running;
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      await closeFd(fd);
    }
  }
}

function closedError(dir: string): AtelierError {
  return new AtelierError('CLOSED', `the journal in ${dir} is closed: open it again to append`, { dir });
}

function failedError(dir: string, cause: unknown): AtelierError {
  const why = (cause as NodeJS.ErrnoException)?.code ?? String(cause);
  return new AtelierError(
    'CLOSED',
    `writing the journal in ${dir} failed (${why}); it accepts no more records: fix the cause (disk full? I/O error?) ` +
      'and restart the engine, which repairs the journal tail',
    { dir, cause: why },
    { cause },
  );
}
