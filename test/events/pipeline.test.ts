/**
 * Durable flushes overlap: up to `SYNC_LANES` batches are being synced at once, each written
 * (one synchronous write) while the fdatasync of the one before may still be in flight. These
 * tests prove that never acknowledges early: every append resolves only after an fdatasync of its
 * own batch that started after its bytes were written, batches resolve in write order (a later
 * batch's fdatasync returning first vouches for nothing before it), and a failed fdatasync fails
 * every batch in flight.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { join } from 'node:path';
import { openJournal } from '../../events/journal.ts';
import { SYNC_LANES } from '../../events/group-commit.ts';
import { segmentName } from '../../events/segments.ts';
import { started, tempDir } from './helpers.ts';

const realWriteSync = fs.writeSync;
const realFdatasync = fs.fdatasync;

test.after.each(() => {
  (fs as any).writeSync = realWriteSync;
  (fs as any).fdatasync = realFdatasync;
});

/**
 * Spies on fs.writeSync and fs.fdatasync (the writer calls them through the module object).
 * Tracks the bytes written, the bytes covered by completed fdatasyncs (those written when the
 * fdatasync started), and how often a batch was written while an fdatasync was in flight (the
 * overlap at work). Each fdatasync is delayed by `delayMs(n)` (n counts from 0) after it really
 * returns, so overlaps and out-of-order completions happen; `failAt` makes that call fail.
 */
function spy(delayMs: (n: number) => number, failAt = -1) {
  const s = { written: 0, durable: 0, syncs: 0, syncsInFlight: 0, maxSyncsInFlight: 0, overlapped: 0, completed: [] as number[] };
  (fs as any).writeSync = (fd: number, buf: Buffer, off?: number, ...rest: unknown[]) => {
    if (s.syncsInFlight > 0) s.overlapped++;
    const n = (realWriteSync as any)(fd, buf, off, ...rest);
    s.written += n;
    return n;
  };
  (fs as any).fdatasync = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    const call = s.syncs++;
    s.syncsInFlight++;
    s.maxSyncsInFlight = Math.max(s.maxSyncsInFlight, s.syncsInFlight);
    // Only bytes written before this call are covered by it.
    const covered = s.written;
    realFdatasync(fd, (err) => {
      setTimeout(() => {
        s.syncsInFlight--;
        s.completed.push(call);
        if (call === failAt) return cb(Object.assign(new Error('EIO'), { code: 'EIO' }));
        if (!err) s.durable = Math.max(s.durable, covered);
        cb(err);
      }, delayMs(call));
    });
  };
  return s;
}

/** Byte offset just past each line of a file: ends[k - 1] for the record with seq k. */
function lineEnds(buf: Buffer): number[] {
  const ends: number[] = [];
  for (let at = buf.indexOf(0x0a); at >= 0; at = buf.indexOf(0x0a, at + 1)) ends.push(at + 1);
  return ends;
}

test('overlapping flushes: no append resolves before an fdatasync covering its bytes', async () => {
  const root = await tempDir('pipeline');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: true });
  let rng = 42;
  const random = () => ((rng = (rng * 1103515245 + 12345) >>> 0) / 2 ** 32);
  // Uneven delays, so a later fdatasync sometimes returns before an earlier one.
  const s = spy(() => Math.floor(random() * 6));
  // seq -> bytes durable when its append resolved.
  const durableAtResolve = new Map<number, number>();
  // Independent appenders (not in lock-step): each waits a little between its appends, so new
  // records keep arriving while an fdatasync is in flight and the second lane has something to write.
  const appender = async (w: number) => {
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, Math.floor(random() * 4)));
      const batch = i % 3 === 0 ? [started(`a${w}-${i}`), started(`b${w}-${i}`)] : [started(`a${w}-${i}`)];
      const recs = await journal.append(batch);
      for (const r of recs) durableAtResolve.set(r.seq, s.durable);
    }
  };
  await Promise.all(Array.from({ length: 40 }, (_, w) => appender(w)));
  await journal.close();
  (fs as any).writeSync = realWriteSync;
  (fs as any).fdatasync = realFdatasync;

  const ends = lineEnds(await fs.promises.readFile(join(dir, segmentName(1))));
  assert.is(durableAtResolve.size, ends.length, 'every record appended resolved once');
  const early: number[] = [];
  for (const [seq, durable] of durableAtResolve) if (ends[seq - 1] > durable) early.push(seq);
  assert.equal(early, [], 'resolved before an fdatasync covering its bytes');
  assert.ok(s.overlapped > 0, `the overlap was exercised: a batch was written while an fdatasync was in flight (${s.overlapped} times)`);
  assert.is(s.maxSyncsInFlight, SYNC_LANES, `at most ${SYNC_LANES} fdatasyncs at a time, and that many were used`);
  assert.ok(s.completed.some((c, i) => i > 0 && c < s.completed[i - 1]), 'some fdatasync returned before one started earlier');
  assert.ok(s.syncs < durableAtResolve.size, `group commit still batches: ${s.syncs} fdatasyncs for ${durableAtResolve.size} records`);

  // What was acknowledged reads back, in order.
  const again = await openJournal({ dir, durable: true });
  assert.equal(again.tail.map((r) => r.seq), Array.from({ length: ends.length }, (_, i) => i + 1));
  await again.journal.close();
});

test("a later batch's fdatasync returning first resolves nothing before the earlier one's", async () => {
  const root = await tempDir('pipeline-order');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: true });
  await journal.append([started('ok')]);
  // A's fdatasync is slow, B's (written behind it) fast.
  const s = spy((n) => (n === 0 ? 40 : 0));
  const order: string[] = [];
  const a = journal.append([started('a')]).then(() => order.push('a'));
  while (s.syncs === 0) await new Promise((r) => setTimeout(r, 1));
  const b = journal.append([started('b')]).then(() => order.push('b'));
  while (s.completed.length === 0) await new Promise((r) => setTimeout(r, 1));
  assert.equal(s.completed, [1], "B's fdatasync returned first");
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(order, [], 'B waits for A');
  await Promise.all([a, b]);
  assert.equal(order, ['a', 'b']);
  await journal.close();
});

test('a failed fdatasync fails every batch in flight, even one whose own fdatasync succeeded', async () => {
  const root = await tempDir('pipeline-fail');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: true });
  await journal.append([started('ok')]);
  // A's fdatasync fails, late; B's, written behind it, succeeds first.
  const s = spy((n) => (n === 0 ? 20 : 0), 0);
  const a = journal.append([started('a')]).then(() => 'resolved', (e) => e.code);
  // Wait until A's fdatasync is in flight, then append B: it is written while that fdatasync runs.
  while (s.syncs === 0) await new Promise((r) => setTimeout(r, 1));
  const b = journal.append([started('b')]).then(() => 'resolved', (e) => e.code);
  assert.equal([await a, await b], ['CLOSED', 'CLOSED']);
  assert.ok(s.overlapped > 0, 'B was written while A was being synced');
  assert.equal(s.completed, [1, 0], "B's fdatasync succeeded before A's failed");
  assert.is(journal.lastSeq, 1, 'only the record synced before the failure counts as on disk');
  const c = await journal.append([started('c')]).catch((e) => e);
  assert.is(c.code, 'CLOSED');
  await journal.close();
});

test.run();
