/**
 * Reads the durable journal from disk, incrementally and read-only, so the state replayed from
 * what is really on disk can be compared with the live state after every step without re-reading
 * the whole file each time. A torn or unterminated last line is left unread (it is what the next
 * open would cut); a file that shrank (a tear, a repair) is read again from the start.
 *
 * The segment stays open between reads (one `fstat`, and one `read` of the new bytes when it
 * grew): the engine appends to it and cuts a torn tail in place, and the simulation's journals
 * never roll, so the file under the descriptor is the journal for the world's whole life. A world
 * forked from a crash image starts its reader as a copy of this one (`cloneTo`): the copied
 * segment holds the same bytes, so folding them again would give the same records and state.
 *
 * @example
 * ```ts
 * const r = new JournalReader(`${stateDir}/journal`);
 * const { state, lastSeq } = r.read(); // the fold of every complete record on disk
 * r.close();
 * ```
 */
import fs from 'node:fs';
import { join } from 'node:path';
import type { JournalRecord } from '../events/catalogue.ts';
import { decodeLine } from '../events/record.ts';
import { foldRecord } from '../events/upcast.ts';
import { initialState, type FoldState } from '../machines/index.ts';

const SEGMENT = /^\d{12,}\.jsonl$/;

export class JournalReader {
  private path: string | null = null;
  private fd: number | null = null;
  private offset = 0;
  private state: FoldState = initialState();
  private records: JournalRecord[] = [];
  private buf: Buffer = Buffer.allocUnsafe(16 * 1024);
  /**
   * Called with each record as it is folded, and the state right after it (the state is the
   * reader's own: read it, do not keep it). The simulation checks its per-record invariants here.
   * A file read again from the start (a tear) folds, and so reports, its records again.
   */
  onRecord: ((state: FoldState, record: JournalRecord) => void) | null = null;

  constructor(readonly dir: string) {}

  /** The segment, opened once it exists (the engine creates it with its first append). */
  private segment(): number | null {
    if (this.fd !== null) return this.fd;
    let names: string[];
    try {
      names = fs.readdirSync(this.dir).filter((n) => SEGMENT.test(n)).sort();
    } catch {
      return null;
    }
    if (names.length > 1) throw new Error(`simulation: the journal rolled to a second segment in ${this.dir}; the reader handles one`);
    if (!names.length) return null;
    const path = join(this.dir, names[0]!);
    if (path !== this.path) {
      this.path = path;
      this.reset();
    }
    this.fd = fs.openSync(path, 'r');
    return this.fd;
  }

  private size(fd: number): number {
    const st = fs.fstatSync(fd);
    // Unlinked under us (never in a simulation): fail loudly rather than read a dead file.
    if (st.nlink === 0) throw new Error(`simulation: the journal segment ${this.path} was removed while being read`);
    return st.size;
  }

  /** The last segment and its size now (before an append: where a torn write would start). */
  tailSize(): { path: string; size: number } | null {
    const fd = this.segment();
    if (fd === null) return null;
    return { path: this.path!, size: this.size(fd) };
  }

  private reset(): void {
    this.offset = 0;
    this.state = initialState();
    this.records = [];
  }

  /** Fold every complete record on disk (incrementally). */
  read(): { state: FoldState; records: readonly JournalRecord[]; lastSeq: number } {
    const fd = this.segment();
    if (fd !== null) {
      const size = this.size(fd);
      if (size < this.offset) this.reset();
      if (size > this.offset) {
        const n = size - this.offset;
        if (this.buf.length < n) this.buf = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2));
        let got = 0;
        while (got < n) {
          const r = fs.readSync(fd, this.buf, got, n - got, this.offset + got);
          if (r === 0) break;
          got += r;
        }
        const buf = this.buf.subarray(0, got);
        let start = 0;
        for (;;) {
          const nl = buf.indexOf(0x0a, start);
          if (nl < 0) break;
          const d = decodeLine(buf.subarray(start, nl));
          if (!d.ok) break;
          this.records.push(d.record);
          foldRecord(this.state, d.record);
          this.onRecord?.(this.state, d.record);
          start = nl + 1;
        }
        this.offset += start;
      }
    }
    return { state: this.state, records: this.records, lastSeq: this.records.at(-1)?.seq ?? 0 };
  }

  /** Records with seq > `after`. */
  tail(after: number): JournalRecord[] {
    const records = this.read().records;
    let i = records.length;
    while (i > 0 && records[i - 1]!.seq > after) i--;
    return records.slice(i);
  }

  /**
   * A reader of `dir` (a byte copy of this reader's directory, e.g. a crash image) that starts
   * where this one is: same records, a copy of its state, same offset. Call `read()` on this one
   * first so that it is up to date with the bytes that were copied.
   */
  cloneTo(dir: string): JournalReader {
    const r = new JournalReader(dir);
    if (this.path !== null) {
      r.path = join(dir, this.path.slice(this.dir.length + 1));
      r.offset = this.offset;
      r.records = this.records.slice();
      r.state = structuredClone(this.state);
    }
    return r;
  }

  /** Let go of the segment (before its directory is removed). */
  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}
