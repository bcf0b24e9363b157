/**
 * Reads the durable journal from disk, incrementally and read-only, so the state replayed from
 * what is really on disk can be compared with the live state after every step without re-reading
 * the whole file each time. A torn or unterminated last line is left unread (it is what the next
 * open would cut); a file that shrank (a tear, a repair) is read again from the start.
 *
 * @example
 * ```ts
 * const r = new JournalReader(`${stateDir}/journal`);
 * const { state, lastSeq } = r.read(); // the fold of every complete record on disk
 * ```
 */
import fs from 'node:fs';
import { join } from 'node:path';
import type { JournalRecord } from '../../events/catalogue.ts';
import { decodeLine } from '../../events/record.ts';
import { evolve, initialState, type FoldState } from '../fold.ts';

const SEGMENT = /^\d{12,}\.jsonl$/;

export class JournalReader {
  private path: string | null = null;
  private offset = 0;
  private state: FoldState = initialState();
  private records: JournalRecord[] = [];

  constructor(readonly dir: string) {}

  private lastSegment(): string | null {
    // The simulation's journals never roll (one segment): list the directory only until it exists.
    if (this.path && fs.existsSync(this.path)) return this.path;
    let names: string[];
    try {
      names = fs.readdirSync(this.dir).filter((n) => SEGMENT.test(n)).sort();
    } catch {
      return null;
    }
    if (names.length > 1) throw new Error(`simulation: the journal rolled to a second segment in ${this.dir}; the reader handles one`);
    return names.length ? join(this.dir, names[0]!) : null;
  }

  /** The last segment and its size now (before an append: where a torn write would start). */
  tailSize(): { path: string; size: number } | null {
    const p = this.lastSegment();
    if (!p) return null;
    return { path: p, size: fs.statSync(p).size };
  }

  private reset(): void {
    this.offset = 0;
    this.state = initialState();
    this.records = [];
  }

  /** Fold every complete record on disk (incrementally). */
  read(): { state: FoldState; records: readonly JournalRecord[]; lastSeq: number } {
    const p = this.lastSegment();
    if (p !== this.path) {
      this.path = p;
      this.reset();
    }
    if (p) {
      const size = fs.statSync(p).size;
      if (size < this.offset) this.reset();
      if (size > this.offset) {
        const fd = fs.openSync(p, 'r');
        try {
          const buf = Buffer.alloc(size - this.offset);
          fs.readSync(fd, buf, 0, buf.length, this.offset);
          let start = 0;
          for (;;) {
            const nl = buf.indexOf(0x0a, start);
            if (nl < 0) break;
            const d = decodeLine(buf.subarray(start, nl));
            if (!d.ok) break;
            this.records.push(d.record);
            evolve(this.state, d.record);
            start = nl + 1;
          }
          this.offset += start;
        } finally {
          fs.closeSync(fd);
        }
      }
    }
    return { state: this.state, records: this.records, lastSeq: this.records.at(-1)?.seq ?? 0 };
  }

  /** Records with seq > `after`. */
  tail(after: number): JournalRecord[] {
    return this.read().records.filter((r) => r.seq > after);
  }
}
