/**
 * The write-ahead journal: append-only segments of sealed JSON lines, group-committed, replayed at
 * start-up from the latest checkpoint.
 *
 * Layout (durable journal in a state directory):
 * ```
 * state/journal/000000000001.jsonl      records 1..k, one JSON object a line (see record.ts)
 * state/journal/000000004242.jsonl      the next segment, from record 4242
 * state/journal/torn-4300-1024.bin      bytes cut off a torn tail, kept for the replay debugger
 * state/journal/next-segment.prealloc   the next segment, written ahead (NUL bytes: see preallocation.ts)
 * state/journal/reserve.prealloc        1 MiB of NUL bytes, rolled into on a full disk (reserve.ts)
 * state/checkpoints/checkpoint-000000004000.json
 * ```
 * While a durable journal is open its last segment usually ends in NUL filler (it was
 * preallocated: see preallocation.ts); closing cuts it, so segments at rest are plain lines.
 * Opening reads the newest valid checkpoint, skips every segment wholly covered by it, verifies
 * the rest (seals, sequence continuity), cuts a torn tail (and a crash's filler), and returns the
 * records after the checkpoint as stored (older versions are upcast as they are folded, with the
 * state they fold into: `upcast.ts`; a newer version is refused here). The volatile journal (transient
 * containers, in the run directory) is the same code with `durable: false`: no fsync, no
 * checkpoints, no preallocation, and a directory lost to a reboot simply starts empty.
 *
 * @example
 * ```ts
 * const { journal, checkpoint, tail, repaired } = await openJournal<State>({ dir: `${stateDir}/journal`, durable: true });
 * let state = tail.reduce(fold, checkpoint?.state ?? initial);
 * const [rec] = await journal.append([{ type: 'engine.reconciled', key: 'engine', data: { at, pending: 0, orphans: 0, missing: 0 } }]);
 * await journal.writeCheckpoint(rec.seq, state);
 * await journal.close();
 * ```
 */
import fs from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { AtelierError } from '../machines/errors.ts';
import { checkVersion, EVENT_VERSIONS } from './catalogue.ts';
import type { EventInput, JournalRecord } from './catalogue.ts';
import { loadLatestCheckpoint, writeCheckpointFile } from './checkpoint.ts';
import type { Checkpoint } from './checkpoint.ts';
import { GroupCommitWriter } from './group-commit.ts';
import { keepPreallocated } from './preallocation.ts';
import { Reserve, RESERVE_BYTES } from './reserve.ts';
import { corruptError, cutTornTail, firstSegmentAfter, fsyncDirSync, listSegments, readSegment, scanSegment, truncateSegment } from './segments.ts';

export type { Checkpoint } from './checkpoint.ts';

export interface JournalOptions {
  /** Segments live here (created if missing). */
  dir: string;
  /** true: group-committed fdatasync; false: volatile journal (no fsync). */
  durable: boolean;
  /** Roll to a new segment past this size (default `DEFAULT_SEGMENT_BYTES`, 4 MiB). */
  segmentBytes?: number;
  /** Default `${dir}/../checkpoints` for durable journals; none for volatile ones. */
  checkpointDir?: string;
  /**
   * Run each fdatasync on the event loop instead of libuv's thread pool (default false). For a
   * journal on tmpfs, where an fdatasync returns at once and the thread pool's round trip costs
   * 25-300 µs of CPU here: the simulation's journals. On a real disk it would block the event loop
   * for the whole fdatasync.
   */
  syncInline?: boolean;
  /**
   * Write each next segment ahead of time, full of NUL bytes, so appends overwrite allocated
   * blocks and each fdatasync writes data only (see `preallocation.ts`). Default: durable journals
   * not synced inline (on tmpfs it would only cost memory).
   */
  preallocate?: boolean;
  /**
   * Bytes of the reserve kept for a full disk (`reserve.ts`): written when the journal opens, spent
   * only while `allowReserve(true)`. Default `RESERVE_BYTES` (1 MiB) for durable journals not
   * synced inline, 0 (none) otherwise.
   */
  reserveBytes?: number;
  /**
   * Stream the tail instead of returning it: called once with the checkpoint, it returns the step
   * each record after it is passed to as soon as it is decoded; `tail` is then empty. A replay of
   * a million records then holds one segment's records at a time, not the whole history.
   */
  replay?: (checkpoint: Checkpoint<unknown> | null) => (record: JournalRecord) => void;
}

export interface OpenedJournal<S> {
  readonly journal: Journal;
  /** Latest valid checkpoint (null if none). */
  readonly checkpoint: Checkpoint<S> | null;
  /** Records with seq > checkpoint.seq (all records if no checkpoint), as stored (versions checked, not upcast), in order. */
  readonly tail: JournalRecord[];
  /** Set when a torn last record was cut off. */
  readonly repaired: { readonly segment: string; readonly offset: number; readonly bytes: number; readonly keptAt: string } | null;
}

export interface Journal {
  /** Seq of the last record on disk (0 for an empty journal). Records still being flushed are not counted. */
  readonly lastSeq: number;
  /** Appends in one batch, assigning consecutive seqs; resolves once on disk (after fdatasync when durable). Concurrent calls are group-committed: they share one write and one fdatasync. */
  append(events: readonly EventInput[]): Promise<JournalRecord[]>;
  /** Atomically write a checkpoint of `state` at `seq` (temp file, fsync, rename, fsync dir); older checkpoints may be pruned (keep the last 2). A no-op for a journal without a checkpoint directory (volatile). */
  writeCheckpoint<S>(seq: number, state: S): Promise<void>;
  /** Every record from `fromSeq` (default 1), as stored (versions checked, not upcast), across all segments (for the replay debugger). */
  readAll(fromSeq?: number): AsyncIterable<JournalRecord>;
  /**
   * Let a write that fails for lack of space roll into the reserve (`reserve.ts`), or stop letting
   * it. The engine allows it in degraded mode, when only remove, gc and undo write.
   */
  allowReserve(on: boolean): void;
  /** The reserve's size when it is whole and unspent; 0 when spent, not kept, or the disk could not hold it. */
  readonly reserveBytes: number;
  /** Write the reserve again if it was spent (or could not be written); resolves whether it is whole now. */
  refillReserve(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Segments roll at 4 MiB (about 12k records). Start-up verifies the records a checkpoint covers
 * only in the segment the checkpoint falls in, so this bounds that work to one small segment.
 */
export const DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024;

/** Refuses an event whose data is not a JSON object or whose key is not a string (before anything is queued). */
function checkEvent(e: EventInput): void {
  const data: unknown = e.data;
  if (data === null || typeof data !== 'object' || typeof (data as { toJSON?: unknown }).toJSON === 'function') {
    throw new AtelierError('INVALID_ARGUMENT', `cannot journal a "${e.type}" event whose data is not a JSON object`, { type: e.type });
  }
  if (typeof e.key !== 'string') throw new AtelierError('INVALID_ARGUMENT', `cannot journal a "${e.type}" event whose key is not a string`, { type: e.type });
}

/** Each event type's current version (a Map: one lookup, no prototype to guard against). */
const VERSIONS = new Map<string, number>(Object.entries(EVENT_VERSIONS));

/** True when `record` is at its type's current version (the common case, checked without building an error). */
function isCurrent(record: JournalRecord): boolean {
  return VERSIONS.get(record.type) === record.v;
}

class SegmentJournal implements Journal {
  private nextSeq: number;
  private checkpoints: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly writer: GroupCommitWriter,
    private readonly checkpointDir: string | null,
    private readonly durable: boolean,
    lastSeq: number,
    private readonly reserve: Reserve | null,
  ) {
    this.nextSeq = lastSeq + 1;
    // A batch refused for space hands back its seqs and those of everything queued after it.
    writer.onRewind = (seq) => void (this.nextSeq = seq);
  }

  allowReserve(on: boolean): void {
    this.writer.reserveAllowed = on;
  }

  get reserveBytes(): number {
    return this.reserve?.ready ? this.reserve.bytes : 0;
  }

  async refillReserve(): Promise<boolean> {
    if (this.reserve === null) return false;
    return this.reserve.ensure();
  }

  get lastSeq(): number {
    return this.writer.durableSeq;
  }

  /** Flushes so far (one write and, when durable, one fdatasync each). Not part of `Journal`: for tests and benchmarks. */
  get flushes(): number {
    return this.writer.flushes;
  }

  /** Settles when the next segment's preallocation (if one started) has ended. Not part of `Journal`: for tests. */
  get preallocation(): Promise<void> {
    return this.writer.preallocation;
  }

  append(events: readonly EventInput[]): Promise<JournalRecord[]> {
    const n = events.length;
    if (n === 0) return Promise.resolve([]);
    for (let i = 0; i < n; i++) {
      const type = events[i].type;
      if (VERSIONS.get(type) === undefined) {
        return Promise.reject(new AtelierError('INVALID_ARGUMENT', `cannot journal unknown event type "${type}": add it to events/catalogue.ts`, { type }));
      }
    }
    // Seqs are taken now, synchronously, so sequence order is call order.
    const first = this.nextSeq;
    if (n === 1) {
      // The common case, without the arrays.
      const e = events[0];
      const v = VERSIONS.get(e.type)!;
      const records = [{ seq: first, v, type: e.type, key: e.key, data: e.data } as JournalRecord];
      // Taken before the enqueue, which may flush at once and, on a full disk, hand seqs back.
      this.nextSeq += 1;
      try {
        checkEvent(e);
        // Throws, queueing nothing, for data JSON cannot encode: the seq is given back.
        return this.writer.enqueueOne(first, v, e.type, e.key, e.data, records);
      } catch (err) {
        this.nextSeq = first;
        return Promise.reject(err);
      }
    }
    const records: JournalRecord[] = new Array(n);
    const versions: number[] = new Array(n);
    const types: string[] = new Array(n);
    const keys: string[] = new Array(n);
    const data: unknown[] = new Array(n);
    try {
      for (let i = 0; i < n; i++) {
        const e = events[i];
        const v = VERSIONS.get(e.type)!;
        // Built in the on-disk key order (seq, v, type, key, data).
        records[i] = { seq: first + i, v, type: e.type, key: e.key, data: e.data } as JournalRecord;
        versions[i] = v;
        types[i] = e.type;
        keys[i] = e.key;
        checkEvent(e);
        data[i] = e.data;
      }
    } catch (e) {
      return Promise.reject(e);
    }
    this.nextSeq += n;
    try {
      return this.writer.enqueue(first, versions, types, keys, data, records);
    } catch (e) {
      this.nextSeq = first;
      return Promise.reject(e);
    }
  }

  writeCheckpoint<S>(seq: number, state: S): Promise<void> {
    if (this.closed) return Promise.reject(new AtelierError('CLOSED', `the journal in ${this.dir} is closed: open it again to checkpoint`));
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > this.lastSeq) {
      return Promise.reject(new AtelierError(
        'INVALID_ARGUMENT',
        `cannot checkpoint at seq ${seq}: the journal in ${this.dir} has records up to ${this.lastSeq} on disk; checkpoint only a fold of appended records`,
        { seq, lastSeq: this.lastSeq },
      ));
    }
    const dir = this.checkpointDir;
    if (dir === null) return Promise.resolve();
    // Serialised, so a slow older checkpoint cannot prune a newer one being written.
    const run = this.checkpoints.then(() => writeCheckpointFile(dir, seq, state, this.durable));
    this.checkpoints = run.catch(() => undefined);
    return run;
  }

  async *readAll(fromSeq = 1): AsyncIterable<JournalRecord> {
    // Stop at what is on disk now: a segment being appended may end in a half-written batch.
    const upTo = this.lastSeq;
    if (upTo < fromSeq) return;
    const segs = await listSegments(this.dir);
    const start = firstSegmentAfter(segs, fromSeq - 1);
    let expected = segs[start]?.first ?? 1;
    for (let i = start; i < segs.length && expected <= upTo; i++) {
      const seg = segs[i];
      if (seg.first !== expected) throw corruptError(seg.path, expected, 0, `the segment starts at record ${seg.first}`);
      const buf = await readSegment(seg.path);
      const scan = scanSegment(seg, buf, expected, i === segs.length - 1, fromSeq - 1);
      for (let k = 0; k < scan.records.length; k++) {
        const record = scan.records[k];
        if (record.seq > upTo) return;
        if (record.seq < fromSeq) continue;
        if (!isCurrent(record)) checkVersion(record, { segment: seg.path, offset: scan.offsets[k] });
        yield record;
      }
      expected = scan.nextSeq;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.checkpoints;
    await this.writer.close();
  }
}

/**
 * Opens (creating if needed) a journal: loads the latest valid checkpoint, verifies and returns the
 * tail after it, cutting off a torn last record. The caller must hold the state directory's lock
 * (`acquireLock`) for a durable journal.
 *
 * @throws AtelierError `JOURNAL_CORRUPT` (details `{ seq, offset, segment }`) for a bad record with
 *   valid ones after it, or a gap in the sequence; `JOURNAL_VERSION` for a record from a newer atelier.
 * @example
 * ```ts
 * const volatile = await openJournal({ dir: '/run/atelier/journal', durable: false });
 * const live = new Map(volatile.tail.filter((r) => r.type === 'container.created').map((r) => [r.key, r]));
 * ```
 */
export async function openJournal<S = unknown>(opts: JournalOptions): Promise<OpenedJournal<S>> {
  const dir = resolve(opts.dir);
  const durable = opts.durable;
  const checkpointDir = opts.checkpointDir !== undefined ? resolve(opts.checkpointDir) : durable ? join(dirname(dir), 'checkpoints') : null;
  fs.mkdirSync(dir, { recursive: true });

  const checkpoint = checkpointDir ? (await loadLatestCheckpoint<S>(checkpointDir)).checkpoint : null;
  const after = checkpoint?.seq ?? 0;
  const segs = await listSegments(dir);
  const start = firstSegmentAfter(segs, after);
  const tail: JournalRecord[] = [];
  const step = opts.replay ? opts.replay(checkpoint) : (r: JournalRecord) => void tail.push(r);
  let repaired: OpenedJournal<S>['repaired'] = null;
  let expected = segs.length > 0 ? segs[start].first : after + 1;
  if (segs.length > 0 && start === 0 && segs[0].first !== 1 && segs[0].first > after + 1) {
    throw corruptError(segs[0].path, after + 1, 0, `the first segment starts at record ${segs[0].first}, so records ${after + 1}..${segs[0].first - 1} are missing`);
  }
  let last: { path: string; size: number } | null = null;
  for (let i = start; i < segs.length; i++) {
    const seg = segs[i];
    if (seg.first !== expected) throw corruptError(seg.path, expected, 0, `the segment starts at record ${seg.first} (a gap or overlap between segments)`);
    const isLast = i === segs.length - 1;
    const buf = await readSegment(seg.path);
    // Records are folded as they are decoded. A corrupt record further on throws from here, and
    // the caller then discards what was folded: nothing is acted on before the whole tail is read.
    const scan = scanSegment(seg, buf, expected, isLast, after, (record, offset) => {
      if (record.seq <= after) return;
      // Older records pass as they are (they are upcast when folded); newer ones are refused.
      if (!isCurrent(record)) checkVersion(record, { segment: seg.path, offset });
      step(record);
    });
    expected = scan.nextSeq;
    let size = scan.end;
    if (scan.torn) {
      const { offset, bytes } = scan.torn;
      const keptAt = await cutTornTail(dir, seg, expected, offset, buf.subarray(offset, scan.end), durable);
      repaired = { segment: seg.path, offset, bytes, keptAt };
      size = offset;
    } else if (isLast && scan.end < buf.length) {
      // A preallocated segment left open by a crash: only NUL filler to cut, nothing to keep.
      truncateSegment(seg.path, scan.end, durable);
    }
    if (isLast) last = { path: seg.path, size };
  }
  const lastSeq = expected - 1;
  if (segs.length === 0 && after > 0) {
    // A checkpoint without the journal it summarises: the journal was deleted or moved.
    throw corruptError(join(dir, '(none)'), after + 1, 0, `checkpoint ${after} exists but the journal has no segments`);
  }
  if (after > lastSeq) {
    throw corruptError(last!.path, lastSeq + 1, last!.size, `the checkpoint is at record ${after} but the journal ends at ${lastSeq}`);
  }
  const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const preallocate = opts.preallocate ?? (durable && opts.syncInline !== true);
  const preallocated = durable && keepPreallocated(dir, preallocate ? segmentBytes : -1);
  const reserveBytes = opts.reserveBytes ?? (durable && opts.syncInline !== true ? RESERVE_BYTES : 0);
  const reserve = durable && reserveBytes > 0 ? new Reserve(dir, reserveBytes) : null;
  // Not having one is not fatal (a disk already full): the journal then has none until refilled.
  await reserve?.ensure();
  // Directory entries created before a crash (segments, repairs) are made durable before anything builds on them.
  if (durable) fsyncDirSync(dir);
  const writer = new GroupCommitWriter({ dir, durable, segmentBytes, last, syncInline: opts.syncInline === true, preallocate, preallocated, reserve }, lastSeq);
  const journal = new SegmentJournal(dir, writer, checkpointDir, durable, lastSeq, reserve);
  return { journal, checkpoint, tail, repaired };
}
