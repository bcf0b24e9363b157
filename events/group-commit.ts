/**
 * Group commit: the journal's single writer. Appends are encoded and sealed straight into the
 * pending batch's buffer; a flush writes everything queued with one write() and, when durable, one
 * fdatasync(). Each batch's promise resolves only once its bytes are on disk (after an fdatasync
 * that started after their write completed, when durable), and bytes reach the file in the order
 * batches were queued.
 *
 * Durable flushing keeps the disk busy and the event loop free to encode:
 *
 * - Up to `SYNC_LANES` (two) batches are being synced at once, on the same file. Appends made
 *   while every lane is busy are encoded into the next batch, and when an fdatasync returns that
 *   batch is written and its fdatasync started *before* the appenders of the finished batch are
 *   woken: they encode their next records while the disk works. Batches resolve in write order,
 *   each once its own fdatasync has returned (see `synced` for why a later one's is not enough).
 * - The write is a synchronous `write()` into the page cache (microseconds for a batch: the
 *   volatile journal does the same), so the fdatasync after it is handed to the thread pool in the
 *   same turn. An asynchronous write would delay that fdatasync until the current turn's
 *   microtasks (every woken appender's next append) had run, leaving the disk idle meanwhile.
 * - When a batch of N appenders is resolved and a > 1 lanes are free, the next batch is cut as
 *   soon as N / a appends have arrived (when that is at least `MIN_PART`), not when all of them
 *   have: appenders woken together would
 *   otherwise move in lock-step, all waiting on one fdatasync and then all encoding while the
 *   disk waits on them. Split, the groups alternate, each encoding while another's fdatasync
 *   runs. Other appends made while a lane is free share one flush, started on a microtask so
 *   that a burst made in one turn goes in one batch.
 *
 * The bytes not yet synced are always one contiguous tail of the last segment (the same crash
 * states as one bigger batch: torn-tail repair covers them). A segment is never closed under an
 * fdatasync, and a batch that starts a segment is synced alone, directory entry included, before
 * anything is written after it.
 *
 * **Preallocation** (`preallocate`, durable journals on a disk; `preallocation.ts`): once a
 * segment is half full the next one is written ahead in NUL bytes, and the roll renames it into
 * place, so batches overwrite allocated blocks at their offset and each fdatasync writes data
 * only. The filler is cut when the segment is closed or rolled past; a batch over
 * `PREALLOCATED_BATCH_MAX` starts a plain segment, which bounds where a crash can leave a hole.
 *
 * After a failed write or fdatasync the writer refuses every later batch: what the kernel did with
 * the failed pages is unknown (a retried fsync can report success for lost data), so the only safe
 * course is to restart, which repairs the tail.
 *
 * **Except a full disk.** A write that fails with `ENOSPC` or `EDQUOT` put no page of the batch on
 * disk that anything relies on: what it wrote is cut off again (`ftruncate` to where the batch
 * began; a segment the batch created goes), the batch and everything queued after it are refused
 * with `NO_SPACE`, their seqs are handed back (`onRewind`), and the writer goes on. While
 * `reserveAllowed` (the engine's degraded mode), such a write rolls into the journal's reserve
 * instead (`reserve.ts`): a new segment whose blocks are already allocated, so the records that
 * remove, gc and undo need still reach disk. An fdatasync that fails, for space or not, is fatal
 * as above (a file system that reports no space only at fdatasync has lost pages already).
 *
 * fs calls go through the `fs` module object (not named imports) so tests can count and slow them.
 *
 * @example
 * ```ts
 * const w = new GroupCommitWriter({ dir, durable: true, segmentBytes: 64 << 20, last: null }, 0);
 * await w.enqueueOne(1, 1, 'container.started', 'c1', { id: 'c1', at }, undefined);
 * await w.close();
 * ```
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { AtelierError } from '../machines/errors.ts';
import { recordLineReserve, writeRecordLine } from './record.ts';
import { NextSegment, PREALLOCATED_BATCH_MAX, UNSYNCED_WINDOW } from './preallocation.ts';
import { isNoSpace, type Reserve } from './reserve.ts';
import { fsyncDir, segmentName } from './segments.ts';

export interface WriterOptions {
  readonly dir: string;
  readonly durable: boolean;
  readonly segmentBytes: number;
  /** The segment to continue appending to (the last one, after repair), or null to start one. */
  readonly last: { readonly path: string; readonly size: number } | null;
  /** fdatasync on the event loop instead of the thread pool (see `JournalOptions.syncInline`). */
  readonly syncInline?: boolean;
  /** Write each next segment ahead, full of NUL bytes (durable journals only; `preallocation.ts`). */
  readonly preallocate?: boolean;
  /** The next segment is already written (`keepPreallocated`), left by the last writer. */
  readonly preallocated?: boolean;
  /** The journal's reserve, rolled into on a full disk while `reserveAllowed` (`reserve.ts`). */
  readonly reserve?: Reserve | null;
}

interface Pending {
  readonly lastSeq: number;
  readonly value: unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** One batch handed from the queue to a flush: its bytes and its appenders. */
interface Batch {
  readonly bytes: Buffer;
  readonly waiters: Pending[];
  /** Its write started a new segment, whose directory entry is synced with it. */
  readonly created: boolean;
  /** Its own fdatasync (and directory fsync) returned; it resolves once every batch before it has. */
  synced: boolean;
}

const INITIAL_BUFFER = 64 * 1024;

/**
 * fdatasyncs in flight at once. Two on one file overlap the thread pool's round trips (and let
 * ext4 commit them together): measured here, 128-record batches on two lanes reach 1.7x the
 * records per second of one lane.
 */
export const SYNC_LANES = 2;

// What can be unsynced at a crash must stay within what repair takes for a hole.
if (SYNC_LANES * PREALLOCATED_BATCH_MAX > UNSYNCED_WINDOW) throw new Error('UNSYNCED_WINDOW is smaller than what two lanes can hold');

/**
 * The fewest appends worth a batch of their own when woken appenders are split over free lanes:
 * fewer encode in a small fraction of an fdatasync (~1.5 µs each against ~0.25 ms), so a split
 * would only add fdatasyncs (16 appenders split in two measured a third slower than unsplit).
 */
const MIN_PART = 64;

/** No early flush: wait for the microtask that collects a turn's appends. */
const NO_CUT = Number.POSITIVE_INFINITY;

export class GroupCommitWriter {
  private readonly opts: WriterOptions;
  /** Encoded lines not yet handed to a flush: `buf[0..len)`, first record `firstSeq`. */
  private buf: Buffer = Buffer.allocUnsafe(INITIAL_BUFFER);
  private len = 0;
  private firstSeq = 0;
  private waiters: Pending[] = [];
  /** Buffers of finished batches, reused for the next ones. */
  private spares: Buffer[] = [];
  /** Batches written and being synced (durable), in write order. */
  private inFlight: Batch[] = [];
  /** A flush is scheduled (a microtask when durable, an immediate when volatile). */
  private scheduled = false;
  /** For the rest of this turn, flush as soon as this many appends wait while a lane is free (see the header). */
  private cut = NO_CUT;
  /** Wakes `close` once nothing is in flight. */
  private idle: (() => void) | null = null;
  private fd: number | null = null;
  private segPath: string | null;
  private segSize: number;
  /** The segment was preallocated: the file runs on past `segSize` in NUL filler, cut when it is closed. */
  private prefilled = false;
  /** The next segment, written ahead (null: no preallocation). */
  private readonly next: NextSegment | null;
  private failure: unknown = null;
  private closed = false;
  /** Highest seq known to be on disk. */
  durableSeq = 0;
  /** A full disk may spend the reserve (the engine's degraded mode: only remove, gc and undo write then). */
  reserveAllowed = false;
  /**
   * Called when a batch is refused for lack of space, with its first seq: that seq and every
   * later one were handed out but never written, so the journal hands them out again.
   */
  onRewind: ((seq: number) => void) | null = null;
  /** Flushes done (one write, and one fdatasync when durable, each): for tests and benchmarks. */
  flushes = 0;

  constructor(opts: WriterOptions, durableSeq: number) {
    this.opts = opts;
    this.segPath = opts.last?.path ?? null;
    this.segSize = opts.last?.size ?? 0;
    this.durableSeq = durableSeq;
    this.next = opts.preallocate === true && opts.durable ? new NextSegment(opts.dir, opts.segmentBytes, opts.preallocated === true) : null;
  }

  /** Settles once the next segment's preallocation (if one started) has ended: for tests. */
  get preallocation(): Promise<void> {
    return this.next?.done ?? Promise.resolve();
  }

  /**
   * Queues records `firstSeq..` (types, keys and data, in order): encodes and seals them straight
   * into the pending batch's buffer (no string per line, no copy of the batch), and resolves to
   * `value` once they are on disk.
   *
   * @throws (synchronously, with nothing queued) what `JSON.stringify` throws for data it cannot encode
   */
  enqueue<T>(firstSeq: number, versions: readonly number[], types: readonly string[], keys: readonly string[], data: readonly unknown[], value: T): Promise<T> {
    if (this.closed) return Promise.reject(closedError(this.opts.dir));
    if (this.failure) return Promise.reject(failedError(this.opts.dir, this.failure));
    const mark = this.len;
    try {
      if (mark === 0) this.firstSeq = firstSeq;
      for (let i = 0; i < types.length; i++) this.put(firstSeq + i, versions[i], types[i], keys[i], data[i]);
    } catch (e) {
      this.len = mark;
      throw e;
    }
    return this.wait<T>(firstSeq + types.length - 1, value);
  }

  /** `enqueue` for one record (it, too, throws for data JSON cannot encode, queueing nothing). */
  enqueueOne<T>(seq: number, v: number, type: string, key: string, data: unknown, value: T): Promise<T> {
    if (this.closed) return Promise.reject(closedError(this.opts.dir));
    if (this.failure) return Promise.reject(failedError(this.opts.dir, this.failure));
    if (this.len === 0) this.firstSeq = seq;
    this.put(seq, v, type, key, data);
    return this.wait<T>(seq, value);
  }

  /**
   * Encodes one record at the end of the pending buffer, growing it when the record needs more
   * room. Throws for data JSON cannot encode, before `len` moves.
   */
  private put(seq: number, v: number, type: string, key: string, data: unknown): void {
    const reserve = this.len + recordLineReserve(type, key);
    if (reserve > this.buf.length) this.grow(reserve);
    let end = writeRecordLine(this.buf, this.len, seq, v, type, key, data);
    if (end > this.buf.length) {
      this.grow(end);
      end = writeRecordLine(this.buf, this.len, seq, v, type, key, data);
    }
    this.len = end;
  }

  /** The promise of the append just encoded, and the flush it needs. */
  private wait<T>(lastSeq: number, value: T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiters.push({ lastSeq, value, resolve: resolve as (v: unknown) => void, reject });
      // With every lane busy, the next fdatasync to return flushes this batch.
      if (!this.laneFree()) return;
      if (this.waiters.length >= this.cut) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        // Volatile flushes complete at once: on a microtask, appenders that append again as soon
        // as they are resolved would keep the event loop in microtasks for ever (timers, I/O
        // starved). A durable flush always waits on its fdatasync's callback, so it cannot.
        if (this.opts.durable) queueMicrotask(this.onScheduled);
        else setImmediate(this.onScheduled);
      }
    });
  }

  private readonly onScheduled = (): void => {
    this.scheduled = false;
    this.cut = NO_CUT;
    if (this.waiters.length > 0 && this.failure === null && this.laneFree()) this.flush();
  };

  /**
   * A batch may be written now: a lane is free, and no batch that started a segment is in
   * flight (its directory entry must be synced before anything after it counts as on disk) nor
   * does this one need a new segment while others are (a segment is never closed under an
   * fdatasync, and an fdatasync of one file covers nothing of another).
   */
  private laneFree(): boolean {
    const n = this.inFlight.length;
    if (n === 0) return true;
    // One lane while the reserve may be spent: rolling into it closes the segment, which must
    // never happen under an fdatasync (degraded mode writes little: one lane is plenty).
    if (this.reserveAllowed) return false;
    return n < SYNC_LANES && !this.inFlight[n - 1].created && !this.needsNewSegment(this.len);
  }

  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  /**
   * Writes the pending lines (one synchronous write) as a batch. Durable: starts its fdatasync,
   * and the batch resolves once it and every batch written before it have returned (`synced`);
   * volatile: resolves it at once.
   */
  private flush(): void {
    const bytes = this.buf.subarray(0, this.len);
    const firstSeq = this.firstSeq;
    const waiters = this.waiters;
    this.buf = this.spares.pop() ?? Buffer.allocUnsafe(INITIAL_BUFFER);
    this.len = 0;
    this.waiters = [];
    let created: boolean;
    try {
      created = this.writeBatch(firstSeq, bytes);
    } catch (e) {
      if (isNoSpace(e)) this.refuseForSpace(e, firstSeq, waiters);
      else this.fail(e, waiters);
      return;
    }
    const batch: Batch = { bytes, waiters, created, synced: false };
    this.segSize += bytes.length;
    this.flushes++;
    if (this.next !== null && this.segSize * 2 >= this.opts.segmentBytes) this.next.prepare();
    if (!this.opts.durable) {
      this.complete(batch);
      return;
    }
    this.inFlight.push(batch);
    const done = (err: unknown): void => {
      if (err) return this.fail(err, []);
      // A new segment's directory entry must be durable too, or a crash could lose the whole file.
      if (created) fsyncDir(this.opts.dir).then(() => this.synced(batch), (e) => this.fail(e, []));
      else this.synced(batch);
    };
    if (!this.opts.syncInline) {
      fs.fdatasync(this.fd!, done);
      return;
    }
    // Synced now, reported on the next turn as the thread pool's callback would be: the batch
    // stays in flight until then, so lanes, order and failures behave exactly as above.
    let err: unknown = null;
    try {
      fs.fdatasyncSync(this.fd!);
    } catch (e) {
      err = e;
    }
    setImmediate(done, err);
  }

  /**
   * `batch`'s fdatasync returned. Batches resolve in write order, each only once its own
   * fdatasync has returned: a later one's success does not vouch for an earlier one, whose
   * writeback error the earlier fdatasync may be the one to report. Flush what queued meanwhile
   * first, then wake the appenders.
   */
  private synced(batch: Batch): void {
    if (this.failure !== null) return;
    batch.synced = true;
    let k = 0;
    while (k < this.inFlight.length && this.inFlight[k].synced) k++;
    if (k === 0) return;
    const done = this.inFlight.splice(0, k);
    if (this.waiters.length > 0 && this.laneFree()) this.flush();
    // The appenders about to be woken will append again in this turn: spread them over the
    // lanes that are free, so the first of them are on disk while the rest encode.
    const free = SYNC_LANES - this.inFlight.length;
    if (free > 1) {
      let woken = 0;
      for (const b of done) woken += b.waiters.length;
      const part = Math.ceil(woken / free);
      if (part >= MIN_PART) this.cut = part;
    }
    for (const b of done) this.complete(b);
    this.settle();
  }

  /**
   * Opens the batch's segment and writes the batch at its end; true when the batch started the
   * segment. On a full disk, cuts off what it wrote and, when the reserve may be spent, rolls into
   * it and writes the batch there; otherwise (or when that fails too) throws the `ENOSPC`.
   */
  private writeBatch(firstSeq: number, bytes: Buffer): boolean {
    let created = false;
    try {
      created = this.open(firstSeq, bytes.length);
      this.writeAt(bytes);
      return created;
    } catch (e) {
      if (!isNoSpace(e)) throw e;
      this.cutBack();
      const reserve = this.opts.reserve;
      if (!this.reserveAllowed || !reserve?.ready || bytes.length > PREALLOCATED_BATCH_MAX || this.inFlight.length > 0) throw e;
      this.closeSegment();
      this.segPath = join(this.opts.dir, segmentName(firstSeq));
      this.segSize = 0;
      if (!reserve.takeAs(this.segPath)) {
        this.segPath = null;
        throw e;
      }
      this.prefilled = true;
      try {
        this.fd = fs.openSync(this.segPath, fs.constants.O_WRONLY);
        this.writeAt(bytes);
      } catch (e2) {
        if (isNoSpace(e2)) this.cutBack();
        throw e2;
      }
      return true;
    }
  }

  /** Writes `bytes` at the segment's end: at the batch's offset, not O_APPEND (a preallocated segment runs on past it). */
  private writeAt(bytes: Buffer): void {
    for (let off = 0; off < bytes.length; ) off += fs.writeSync(this.fd!, bytes, off, bytes.length - off, this.segSize + off);
  }

  /**
   * After a write that failed for space: cut off what it wrote (a preallocated segment loses its
   * filler with it: writes there need no new blocks, so this one was not in it), and remove a
   * segment it had just created, so the next batch creates it again, directory entry synced.
   */
  private cutBack(): void {
    if (this.segSize === 0) {
      if (this.fd !== null) fs.closeSync(this.fd);
      if (this.segPath !== null) fs.rmSync(this.segPath, { force: true });
      this.fd = null;
      this.segPath = null;
      this.prefilled = false;
      return;
    }
    if (this.fd !== null) fs.ftruncateSync(this.fd, this.segSize);
    this.prefilled = false;
  }

  /** Closes the current segment, cutting a preallocated one's filler. */
  private closeSegment(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    if (this.prefilled) fs.ftruncateSync(fd, this.segSize);
    fs.closeSync(fd);
  }

  /**
   * A batch was refused for lack of space: refuse it and everything queued after it with
   * `NO_SPACE`, and hand their seqs back. Batches before it (in flight) are unaffected, and so is
   * every later append: the writer goes on.
   */
  private refuseForSpace(e: unknown, firstSeq: number, waiters: Pending[]): void {
    const err = noSpaceError(this.opts.dir, e);
    const queued = this.waiters;
    this.waiters = [];
    this.len = 0;
    this.onRewind?.(firstSeq);
    for (const p of waiters) p.reject(err);
    for (const p of queued) p.reject(err);
    this.settle();
  }

  private needsNewSegment(bytes: number): boolean {
    if (this.segPath === null || (this.segSize > 0 && this.segSize + bytes > this.opts.segmentBytes)) return true;
    return this.prefilled && bytes > PREALLOCATED_BATCH_MAX;
  }

  /** Opens the segment a batch goes to, rolling to a new one past `segmentBytes`; true when it created one. */
  private open(firstSeq: number, bytes: number): boolean {
    let created = false;
    if (this.needsNewSegment(bytes)) {
      this.closeSegment();
      this.segPath = join(this.opts.dir, segmentName(firstSeq));
      this.segSize = 0;
      created = true;
      this.prefilled = bytes <= PREALLOCATED_BATCH_MAX && this.next !== null && this.next.takeAs(this.segPath);
    }
    if (this.fd === null) this.fd = fs.openSync(this.segPath!, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
    return created;
  }

  /** A batch is on disk: keep its buffer, advance `durableSeq`, resolve its appends. */
  private complete(batch: Batch): void {
    const whole = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.buffer.byteLength - batch.bytes.byteOffset);
    if (whole.length >= INITIAL_BUFFER && this.spares.length < SYNC_LANES + 1) this.spares.push(whole);
    const waiters = batch.waiters;
    this.durableSeq = waiters[waiters.length - 1].lastSeq;
    for (const p of waiters) p.resolve(p.value);
  }

  /**
   * A write, fdatasync or directory fsync failed: refuse `waiters`, every batch in flight (an
   * fdatasync that returns after a failed one may report success for pages whose error went to
   * the failed one), everything queued, and every later append.
   */
  private fail(e: unknown, waiters: Pending[]): void {
    if (this.failure !== null) return;
    this.failure = e;
    const err = failedError(this.opts.dir, e);
    for (const p of waiters) p.reject(err);
    for (const b of this.inFlight) for (const p of b.waiters) p.reject(err);
    for (const p of this.waiters) p.reject(err);
    this.inFlight = [];
    this.waiters = [];
    this.len = 0;
    this.settle();
  }

  /** Wakes `close` once nothing is in flight or queued. */
  private settle(): void {
    if (this.idle !== null && this.inFlight.length === 0 && this.waiters.length === 0) {
      const idle = this.idle;
      this.idle = null;
      idle();
    }
  }

  /** Waits for queued batches to reach disk, then closes the segment. Later enqueues fail with CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.waiters.length > 0 && this.failure === null && this.laneFree()) this.flush();
    if (this.inFlight.length > 0 || this.waiters.length > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    this.closeSegment();
    // A next segment being written is finished (and kept, for the next writer) before closing.
    await this.next?.done;
  }
}

function closedError(dir: string): AtelierError {
  return new AtelierError('CLOSED', `the journal in ${dir} is closed: open it again to append`, { dir });
}

function noSpaceError(dir: string, cause: unknown): AtelierError {
  const why = (cause as NodeJS.ErrnoException).code ?? 'ENOSPC';
  return new AtelierError(
    'NO_SPACE',
    `cannot write the journal in ${dir}: its disk is full (${why}); nothing was written. Free space on that disk ` +
      '(`atelier df` shows what atelier holds); meanwhile `atelier remove` and `atelier gc` still work',
    { dir, disk: 'journal', cause: why },
    { cause },
  );
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
