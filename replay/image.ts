/**
 * A journal image: every record of a journal directory copied from anywhere, read without the lock
 * and without repairing anything. A torn tail is reported, not cut; a corrupt record (or one a
 * newer atelier wrote) stops the reading there, and the records before it are kept: the debugger
 * shows everything up to the damage and says where the damage is.
 *
 * `--journal DIR` takes a journal directory (the `*.jsonl` segments), a state directory (holding
 * `journal/`), or a crash image or golden case (holding `state/journal/`); the volatile journal of
 * transient containers is read beside it when there is one (`volatile/`, `run/volatile/`).
 *
 * @example
 * ```ts
 * const image = await readJournalImage('/tmp/from-alice/state/journal');
 * image.records.length; // 412
 * image.damage;         // { kind: 'corrupt', seq: 413, segment: '…/00000000000000000001.jsonl', offset: 90211, … }
 * ```
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { JournalRecord } from '../events/catalogue.ts';
import { corruptError, listSegments, readSegment, scanSegment } from '../events/segments.ts';
import { checkVersion } from '../events/upcast.ts';
import { AtelierError, isAtelierError } from '../machines/errors.ts';

/** Where reading stopped early: a torn tail (the next start cuts it), a corrupt record, or a newer one. */
export interface JournalDamage {
  readonly kind: 'torn' | 'corrupt' | 'version';
  /** The sequence number the damaged record has or should have had. */
  readonly seq: number;
  readonly segment: string;
  /** Byte offset in the segment where the damage starts. */
  readonly offset: number;
  /** For a torn tail: its length. */
  readonly bytes?: number;
  /** The error opening an engine on this journal would give (`JOURNAL_CORRUPT`, `JOURNAL_VERSION`), or null for a torn tail. */
  readonly code: string | null;
  readonly message: string;
}

export interface JournalImage {
  /** The durable journal's directory. */
  readonly dir: string;
  /** Every record before the damage, as stored (not upcast). */
  readonly records: JournalRecord[];
  /** The first damage met, if any. */
  readonly damage: JournalDamage | null;
  /** Torn pieces earlier starts kept aside (`torn-*`). */
  readonly keptTorn: string[];
  /** The volatile journal's records (transient containers; their seqs are their own), when one is beside it. */
  readonly volatile: JournalRecord[];
  readonly volatileDir: string | null;
}

/** What reading a journal found, whether or not it kept the records. */
export interface ScanResult {
  readonly first: number;
  readonly last: number;
  readonly count: number;
  readonly damage: JournalDamage | null;
}

/**
 * Read every record of a journal directory in order, read-only, by the same rules as start-up
 * (`scanSegment`), handing each to `onRecord` as it is decoded (so a million records are never held
 * at once), and stopping at damage instead of throwing.
 */
export async function scanJournal(dir: string, onRecord: (record: JournalRecord) => void): Promise<ScanResult> {
  const segs = await listSegments(dir);
  let expected = segs[0]?.first ?? 1;
  let first = 0;
  let last = 0;
  let count = 0;
  const result = (damage: JournalDamage | null): ScanResult => ({ first, last, count, damage });
  for (const [i, seg] of segs.entries()) {
    try {
      if (seg.first !== expected) throw corruptError(seg.path, expected, 0, `the segment starts at record ${seg.first}`);
      const scan = scanSegment(seg, await readSegment(seg.path), expected, i === segs.length - 1, 0, (record, offset) => {
        checkVersion(record, { segment: seg.path, offset });
        if (count === 0) first = record.seq;
        last = record.seq;
        count++;
        onRecord(record);
      });
      if (scan.torn) {
        return result({
          kind: 'torn',
          seq: scan.nextSeq,
          segment: seg.path,
          offset: scan.torn.offset,
          bytes: scan.torn.bytes,
          code: null,
          message: `a torn last record: ${scan.torn.bytes} bytes at byte ${scan.torn.offset} of ${seg.path} (a write the crash cut short; the next start cuts it and keeps it aside)`,
        });
      }
      expected = scan.nextSeq;
    } catch (e) {
      if (!isAtelierError(e, 'JOURNAL_CORRUPT') && !isAtelierError(e, 'JOURNAL_VERSION')) throw e;
      const info = (e.info ?? {}) as { seq?: number; offset?: number; segment?: string };
      return result({
        kind: e.code === 'JOURNAL_CORRUPT' ? 'corrupt' : 'version',
        seq: info.seq ?? last + 1,
        segment: info.segment ?? seg.path,
        offset: info.offset ?? 0,
        code: e.code,
        message: e.message,
      });
    }
  }
  return result(null);
}

/** Every record of a journal directory (see `scanJournal`), kept in memory. */
export async function readRecords(dir: string): Promise<{ records: JournalRecord[]; damage: JournalDamage | null }> {
  const records: JournalRecord[] = [];
  const { damage } = await scanJournal(dir, (r) => records.push(r));
  return { records, damage };
}

/** Where a `--journal DIR` (or a state directory) keeps its durable and volatile journals. */
export function locateJournal(dir: string): { durable: string; volatile: string | null } {
  const candidates = [join(dir, 'journal'), join(dir, 'state', 'journal')];
  const durable = candidates.find((d) => existsSync(d)) ?? dir;
  const volatile = [join(dir, 'volatile'), join(dir, 'run', 'volatile')].find((d) => existsSync(d)) ?? null;
  return { durable, volatile };
}

/** Where the durable journal of `--journal` (or the state directory) is; NOT_FOUND when it holds no segment. */
export async function journalDirOf(opts: { journal?: string; stateDir: string }): Promise<string> {
  const dir = opts.journal ?? opts.stateDir;
  const durable = locateJournal(dir).durable;
  if ((await listSegments(durable).catch(() => [])).length === 0) throw noJournal(dir);
  return durable;
}

function noJournal(dir: string): AtelierError {
  return new AtelierError('NOT_FOUND', `${dir} holds no journal (no *.jsonl segment in it, nor in journal/ or state/journal/ beneath it): give --journal the journal directory, or the state directory it was copied from`, {
    journal: dir,
  });
}

/**
 * Read a journal image. `dir` is as `--journal` takes it; `volatileDir` overrides where the volatile
 * journal is looked for (`--state-dir` with the run directory's).
 *
 * @throws AtelierError `NOT_FOUND` when there is no journal there at all.
 */
export async function readJournalImage(dir: string, volatileDir?: string | null): Promise<JournalImage> {
  const where = locateJournal(dir);
  const segs = await listSegments(where.durable).catch(() => []);
  if (segs.length === 0) throw noJournal(dir);
  const { records, damage } = await readRecords(where.durable);
  const keptTorn = await keptTornPieces(where.durable);
  const vdir = volatileDir === undefined ? where.volatile : volatileDir;
  // The volatile journal is a convenience (container lanes): damage there does not hide the durable one.
  const volatile = vdir && existsSync(vdir) ? (await readRecords(vdir).catch(() => ({ records: [] as JournalRecord[] }))).records : [];
  return { dir: where.durable, records, damage, keptTorn, volatile, volatileDir: vdir && existsSync(vdir) ? vdir : null };
}

/** The torn pieces earlier starts kept aside in a journal directory (`torn-*`), by name. */
export async function keptTornPieces(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith('torn-')).sort();
}

/** The image the replay commands read: `--journal DIR`, else the state directory's journal. */
export async function openImage(opts: { journal?: string; stateDir: string; runDir: string }): Promise<JournalImage> {
  if (opts.journal !== undefined) return readJournalImage(opts.journal);
  return readJournalImage(opts.stateDir, join(opts.runDir, 'volatile'));
}
