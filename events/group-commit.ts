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
 * await w.enqueue('{"seq":1,...}\n', 1, 1);
 * await w.close();
 * ```
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { AtelierError } from '../errors.ts';
import { fsyncDir, segmentName } from './segments.ts';

export interface WriterOptions {
  readonly dir: string;
  readonly durable: boolean;
  readonly segmentBytes: number;
  /** The segment to continue appending to (the last one, after repair), or null to start one. */
  readonly last: { readonly path: string; readonly size: number } | null;
}

interface Pending {
  readonly text: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly value: unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (e: unknown) => void;
}

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
  private queue: Pending[] = [];
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

  /** Queues encoded lines holding records `firstSeq..lastSeq`; resolves to `value` once they are on disk. */
  enqueue<T>(text: string, firstSeq: number, lastSeq: number, value: T): Promise<T> {
    if (this.closed) return Promise.reject(closedError(this.opts.dir));
    if (this.failure) return Promise.reject(failedError(this.opts.dir, this.failure));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ text, firstSeq, lastSeq, value, resolve: resolve as (v: unknown) => void, reject });
      // Start on a microtask so appends made in the same tick share the first flush too.
      if (!this.running) this.running = Promise.resolve().then(() => this.drain());
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.flush(batch);
        } catch (e) {
          this.failure = e;
          const err = failedError(this.opts.dir, e);
          for (const p of batch) p.reject(err);
          for (const p of this.queue) p.reject(err);
          this.queue = [];
          return;
        }
        this.durableSeq = batch[batch.length - 1].lastSeq;
        for (const p of batch) p.resolve(p.value);
      }
    } finally {
      this.running = null;
    }
  }

  private async flush(batch: Pending[]): Promise<void> {
    const buf = Buffer.from(batch.length === 1 ? batch[0].text : batch.map((p) => p.text).join(''), 'utf8');
    let created = false;
    if (this.segPath === null || (this.segSize > 0 && this.segSize + buf.length > this.opts.segmentBytes)) {
      if (this.fd !== null) {
        const old = this.fd;
        this.fd = null;
        await closeFd(old);
      }
      this.segPath = join(this.opts.dir, segmentName(batch[0].firstSeq));
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
