/**
 * Group commit: the journal's single writer. While one write + fdatasync is in flight, new batches
 * queue; the next flush writes everything queued with one write() and one fdatasync(). Each
 * batch's promise resolves only once its bytes are on disk (after the fdatasync when durable), and
 * bytes reach the file in the order batches were queued.
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
    const batch = { bytes: this.buf.subarray(0, this.len), firstSeq: this.firstSeq, waiters: this.waiters };
    this.buf = this.spare !== null && this.spare.length >= INITIAL_BUFFER ? this.spare : Buffer.allocUnsafe(INITIAL_BUFFER);
    this.spare = null;
    this.len = 0;
    this.waiters = [];
    return batch;
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiters.length > 0) {
        const batch = this.take();
        try {
          await this.flush(batch);
        } catch (e) {
          this.failure = e;
          const err = failedError(this.opts.dir, e);
          for (const p of batch.waiters) p.reject(err);
          for (const p of this.waiters) p.reject(err);
          this.waiters = [];
          this.len = 0;
          return;
        }
        // Its bytes are on disk (written, or only in the page cache for a volatile journal): reuse it.
        this.spare = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.buffer.byteLength - batch.bytes.byteOffset);
        const waiters = batch.waiters;
        this.durableSeq = waiters[waiters.length - 1].lastSeq;
        for (const p of waiters) p.resolve(p.value);
      }
    } finally {
      this.running = null;
    }
  }

  private async flush(batch: Batch): Promise<void> {
    const buf = batch.bytes;
    let created = false;
    if (this.segPath === null || (this.segSize > 0 && this.segSize + buf.length > this.opts.segmentBytes)) {
      if (this.fd !== null) {
        const old = this.fd;
        this.fd = null;
        await closeFd(old);
      }
      this.segPath = join(this.opts.dir, segmentName(batch.firstSeq));
      this.segSize = 0;
      created = true;
    }
    if (this.fd === null) this.fd = await openAppend(this.segPath);
    if (this.opts.durable) {
      // On a real disk a write can block (dirty-page throttling): keep it off the event loop.
      await writeAll(this.fd, buf);
    } else {
      // Volatile journals live on tmpfs: a write is a memory copy, cheaper inline than a thread-pool hop.
      for (let off = 0; off < buf.length; ) off += fs.writeSync(this.fd, buf, off);
    }
    this.segSize += buf.length;
    this.flushes++;
    if (this.opts.durable) {
      await fdatasync(this.fd);
      // A new segment's directory entry must be durable too, or a crash could lose the whole file.
      if (created) await fsyncDir(this.opts.dir);
    }
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
