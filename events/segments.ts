/**
 * Journal segments: append-only files named by the sequence number of their first record
 * (`000000000001.jsonl`), so a reader that only needs records after seq N can skip every segment
 * whose successor starts at or below N + 1 without opening it.
 *
 * Scanning tells a torn tail (a crash in the middle of the last write: bad bytes at the end of the
 * last segment, nothing valid after them) from corruption (a bad record with valid ones after it,
 * or a gap in the sequence), which is refused: committed history is never truncated.
 *
 * **Preallocated segments.** A durable journal writes most segments into a file it filled with NUL
 * bytes beforehand (see `preallocation.ts`): overwriting allocated blocks lets each fdatasync skip
 * the file-system journal commit that growing a file costs. While such a segment is open, or
 * after a crash, the file ends in NUL filler after the last record; closing (or rolling past) a
 * segment cuts the filler, and start-up cuts it from the last segment, so a journal at rest is
 * plain JSON lines (but for an earlier segment's filler when a crash came right after a roll,
 * which readers skip). A record line never holds a NUL byte (JSON escapes it), so readers take the
 * data to end at the last non-NUL byte. Two batches may be in flight at a crash, and the disk may
 * write their sectors in any order: the bytes after the last synced record can then hold a hole
 * (NUL, never written) with records after it. A bad line holding a NUL, in the last segment,
 * within `UNSYNCED_WINDOW` bytes of the data's end, is such a tear; anything else is corruption.
 *
 * @example
 * ```ts
 * const segs = await listSegments('/state/journal');
 * const scan = scanSegment(segs[0], await readFile(segs[0].path), segs[0].first, true);
 * ```
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { AtelierError } from '../machines/errors.ts';
import type { JournalRecord } from './catalogue.ts';
import { isAscii } from 'node:buffer';
import { UNSYNCED_WINDOW } from './preallocation.ts';
import { checkSeal, decodeRecordAt, seqOfLine } from './record.ts';
import type { SealFailure } from './record.ts';

export interface SegmentInfo {
  readonly name: string;
  readonly path: string;
  /** Sequence number of the segment's first record (from its name). */
  readonly first: number;
}

const NEWLINE = 0x0a;

/** Where a segment's data ends: after its last byte that is not NUL filler (see the header). */
function dataEnd(buf: Uint8Array): number {
  let n = buf.length;
  while (n > 0 && buf[n - 1] === 0) n--;
  return n;
}

const SEGMENT_RE = /^(\d{12,})\.jsonl$/;

/** File name of the segment whose first record is `first`. */
export function segmentName(first: number): string {
  return `${String(first).padStart(12, '0')}.jsonl`;
}

/** The entries of `dir`, or none when it does not exist (a fresh or wiped state directory). */
export async function readdirIfPresent(dir: string): Promise<string[]> {
  try {
    return fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/**
 * The segments in `dir`, in sequence order. Files that are not segments (torn-tail keepsakes,
 * editor backups) are ignored.
 *
 * @example
 * ```ts
 * for (const s of await listSegments(dir)) console.log(s.first, s.path);
 * ```
 */
export async function listSegments(dir: string): Promise<SegmentInfo[]> {
  const names = await readdirIfPresent(dir);
  const segs: SegmentInfo[] = [];
  for (const name of names) {
    const m = SEGMENT_RE.exec(name);
    if (m) segs.push({ name, path: join(dir, name), first: Number(m[1]) });
  }
  return segs.sort((a, b) => a.first - b.first);
}

/**
 * Index of the first segment that may hold a record with seq > `after`: every segment before it
 * ends below `after + 1`, because its successor starts at or below `after + 1`.
 */
export function firstSegmentAfter(segs: readonly SegmentInfo[], after: number): number {
  let i = 0;
  while (i + 1 < segs.length && segs[i + 1].first <= after + 1) i++;
  return i;
}

export interface SegmentScan {
  /** The decoded (not yet upcast) records, in order. */
  readonly records: JournalRecord[];
  /** `offsets[i]`: the byte offset where `records[i]`'s line starts (kept apart: no object per record). */
  readonly offsets: number[];
  /** The seq the next record must have. */
  readonly nextSeq: number;
  /** Where the torn tail starts and how long it is, filler excluded (last segment only). */
  readonly torn: { readonly offset: number; readonly bytes: number } | null;
  /** Where the data ends: the NUL filler of a preallocated segment starts here (`dataEnd`). */
  readonly end: number;
}

const WHY: Record<SealFailure | 'unterminated', string> = {
  short: 'the line is too short to be a record',
  'no-seal': 'the line has no checksum',
  crc: 'the checksum does not match',
  json: 'the line is not valid JSON',
  shape: 'the line is not a journal record',
  unterminated: 'the line has no newline',
};

/**
 * The `JOURNAL_CORRUPT` error for a segment, naming the file, the seq expected there and the byte
 * offset, with `details: { seq, offset, segment }` (segment = the file's path).
 */
export function corruptError(segment: string, seq: number, offset: number, what: string): AtelierError {
  return new AtelierError(
    'JOURNAL_CORRUPT',
    `journal segment ${segment} is corrupt at byte ${offset}, where record ${seq} should be: ${what}. ` +
      'This is not a torn write, so atelier will not truncate committed history. Stop here: restore ' +
      'the state directory from a backup, or inspect the segment (one JSON record a line) and repair it by hand.',
    { seq, offset, segment },
  );
}

/**
 * Decodes one segment's bytes, checking every record's seal and that seqs run on from `expected`.
 * Records up to `parseAfter` (those a checkpoint covers) have their seal and seq checked the same
 * way but are neither parsed nor returned. A bad line at the end of the last segment with no valid
 * line after it is a torn tail (reported, not thrown); anything else wrong throws `JOURNAL_CORRUPT`.
 *
 * This is start-up's hot loop (a million records in a few seconds), so it allocates nothing per
 * line but the record itself: an all-ASCII segment (the usual case: names, ids, times and plans are
 * ASCII) is decoded once to a latin1 string whose slices are the lines' texts, character offsets
 * being byte offsets; a segment holding any other byte is decoded line by line as UTF-8.
 *
 * @example
 * ```ts
 * const { records, offsets, nextSeq, torn } = scanSegment(seg, buf, seg.first, isLast);
 * ```
 */
export function scanSegment(
  seg: SegmentInfo,
  buf: Buffer,
  expected: number,
  isLast: boolean,
  parseAfter = 0,
  /**
   * Take each record as soon as it is decoded instead of collecting them (then `records` and
   * `offsets` stay empty): a replay then folds each record while it is young garbage, rather than
   * holding a whole segment's records until the segment ends (most of a replay's GC time).
   */
  onRecord?: (record: JournalRecord, offset: number) => void,
): SegmentScan {
  const records: JournalRecord[] = [];
  const offsets: number[] = [];
  const n = dataEnd(buf);
  const ascii = isAscii(n === buf.length ? buf : buf.subarray(0, n));
  // Decoded when the first record to parse is met (a segment wholly under a checkpoint never is).
  let text: string | null = null;
  let seq = expected;
  let start = 0;
  while (start < n) {
    const nl = text !== null ? text.indexOf('\n', start) : buf.indexOf(NEWLINE, start);
    if (seq <= parseAfter && nl >= 0) {
      // Covered by the checkpoint: its checksum and seq are verified, its JSON is not parsed.
      const sealAt = checkSeal(buf, start, nl);
      if (typeof sealAt === 'number' && seqOfLine(buf, start, sealAt) === seq) {
        seq++;
        start = nl + 1;
        continue;
      }
      // Anything else takes the full path below, for the precise error.
    }
    // A segment partly under a checkpoint has its (short) tail decoded line by line instead.
    if (ascii && text === null && parseAfter < expected) text = buf.toString('latin1', 0, n);
    const r = nl < 0 ? ('unterminated' as const) : decodeRecordAt(buf, text, start, nl);
    if (typeof r !== 'string') {
      if (r.seq !== seq) {
        throw corruptError(seg.path, seq, start, `found record ${r.seq} instead (a gap or a repeat in the sequence)`);
      }
      if (onRecord) onRecord(r, start);
      else {
        records.push(r);
        offsets.push(start);
      }
      seq++;
      start = nl + 1;
      continue;
    }
    // A bad line is a torn tail only if it is in the last segment and nothing valid follows it,
    // or a hole does (see the header).
    let validAfter = false;
    for (let at = nl < 0 ? n : nl + 1; at < n; ) {
      const next = buf.indexOf(NEWLINE, at);
      if (next < 0) break; // an unterminated last line is never valid
      if (typeof decodeRecordAt(buf, null, at, next) !== 'string') {
        validAfter = true;
        break;
      }
      at = next + 1;
    }
    // Valid records after a hole (a NUL in the bad line) are unsynced ones from the same crash.
    const hole = validAfter && n - start <= UNSYNCED_WINDOW && holdsNul(buf, start, nl < 0 ? n : nl);
    if (!isLast || (validAfter && !hole)) {
      const after = validAfter ? 'valid records follow it' : 'it is not the last segment';
      throw corruptError(seg.path, seq, start, `${WHY[r]} and ${after}`);
    }
    return { records, offsets, nextSeq: seq, torn: { offset: start, bytes: n - start }, end: n };
  }
  return { records, offsets, nextSeq: seq, torn: null, end: n };
}

function holdsNul(buf: Buffer, start: number, end: number): boolean {
  const at = buf.indexOf(0, start);
  return at >= 0 && at < end;
}

/**
 * Reads a whole segment (one read when the kernel allows; what the file holds now).
 *
 * Start-up's small file-system steps (listing a directory, reading a segment or a checkpoint,
 * fsyncing a directory, making one) are synchronous calls. On this kind of machine (a VM with two
 * cores) one asynchronous fs call costs 25-300 µs of CPU in thread-pool hand-offs and wake-ups,
 * against 3-15 µs for the same call made synchronously on tmpfs, and an engine's start-up made
 * ~30 of them: most of its cost when the journal is small (the simulation restarts engines
 * thousands of times). Start-up blocks on the replay's CPU anyway; a read of the largest segment
 * (4 MiB) takes a few ms against tens of ms to decode its records. Appends, checkpoint writes
 * (all but listing their directory to prune it) and writing a torn tail's keepsake stay
 * asynchronous.
 */
export async function readSegment(path: string): Promise<Buffer> {
  const fd = fs.openSync(path, 'r');
  try {
    // Reads what the file holds now. Bytes appended meanwhile (readAll on a live journal) are not
    // read: readers stop at what was on disk when they started.
    const { size } = fs.fstatSync(fd);
    const buf = Buffer.allocUnsafe(size);
    let len = 0;
    while (len < size) {
      const bytesRead = fs.readSync(fd, buf, len, size - len, len);
      if (bytesRead === 0) break;
      len += bytesRead;
    }
    return len === size ? buf : buf.subarray(0, len);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Cuts a torn tail off the segment, after keeping its bytes in `dir/torn-<seq>-<offset>.bin` for the
 * replay debugger. When durable, both are fsynced before returning.
 *
 * @returns the path of the kept bytes.
 * @example
 * ```ts
 * const keptAt = await cutTornTail(dir, seg, scan.nextSeq, scan.torn.offset, buf.subarray(scan.torn.offset), true);
 * ```
 */
export async function cutTornTail(
  dir: string,
  seg: SegmentInfo,
  seq: number,
  offset: number,
  bytes: Buffer,
  durable: boolean,
): Promise<string> {
  let keptAt = join(dir, `torn-${seq}-${offset}.bin`);
  // A second crash at the same place must not overwrite the first keepsake.
  for (let n = 2; fs.existsSync(keptAt); n++) keptAt = join(dir, `torn-${seq}-${offset}.${n}.bin`);
  const fh = await fs.promises.open(keptAt, 'wx');
  try {
    await fh.writeFile(bytes);
    if (durable) await fh.sync();
  } finally {
    await fh.close();
  }
  // The keepsake is on disk before the segment loses those bytes.
  truncateSegment(seg.path, offset, durable);
  if (durable) await fsyncDir(dir);
  return keptAt;
}

/**
 * Cuts a segment to `size` bytes (a torn tail once kept aside, or a preallocated segment's NUL
 * filler), synchronously as start-up's other small steps (see `readSegment`); fsynced when durable.
 */
export function truncateSegment(path: string, size: number, durable: boolean): void {
  const fd = fs.openSync(path, 'r+');
  try {
    fs.ftruncateSync(fd, size);
    if (durable) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a directory so that entries created, renamed or removed in it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * `fsyncDir` made synchronously, for start-up (see `readSegment`). Appends and checkpoints use
 * `fsyncDir`: on a disk a directory's fsync takes long enough that the event loop should not wait.
 */
export function fsyncDirSync(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
