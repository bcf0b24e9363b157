/**
 * Durable flushes are pipelined (batch N+1 is written while batch N's fdatasync runs). These tests
 * prove the pipeline never acknowledges early: every append resolves only after an fdatasync that
 * started after the write of its bytes had completed, and a failed fdatasync fails the batch
 * written behind it too.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { join } from 'node:path';
import { openJournal } from '../../events/journal.ts';
import { segmentName } from '../../events/segments.ts';
import { started, tempDir } from './helpers.ts';

const realWrite = fs.write;
const realFdatasync = fs.fdatasync;

test.after.each(() => {
  (fs as any).write = realWrite;
  (fs as any).fdatasync = realFdatasync;
});

/**
 * Spies on fs.write and fs.fdatasync (the writer calls them through the module object). Tracks
 * the bytes whose write has completed, the bytes covered by completed fdatasyncs (those whose
 * write had completed when the fdatasync started), and whether a write ever ran while an
 * fdatasync was in flight (the pipeline at work). fdatasync is slowed down so the overlap happens.
 */
function spy(syncDelayMs: number) {
  const s = { written: 0, durable: 0, syncs: 0, syncsInFlight: 0, maxSyncsInFlight: 0, overlapped: 0, writesInFlight: 0, failNext: false };
  (fs as any).write = (fd: number, buf: Buffer, off: number, len: number, pos: null, cb: (err: NodeJS.ErrnoException | null, n: number) => void) => {
    if (s.syncsInFlight > 0) s.overlapped++;
    s.writesInFlight++;
    realWrite(fd, buf, off, len, pos, (err, n) => {
      s.writesInFlight--;
      if (!err) s.written += n;
      cb(err, n);
    });
  };
  (fs as any).fdatasync = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    s.syncs++;
    s.syncsInFlight++;
    s.maxSyncsInFlight = Math.max(s.maxSyncsInFlight, s.syncsInFlight);
    // Only bytes whose write completed before this call are covered by it.
    const covered = s.written;
    const fail = s.failNext;
    realFdatasync(fd, (err) => {
      setTimeout(() => {
        s.syncsInFlight--;
        if (fail) return cb(Object.assign(new Error('EIO'), { code: 'EIO' }));
        if (!err) s.durable = Math.max(s.durable, covered);
        cb(err);
      }, syncDelayMs);
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

test('pipelined flushes: no append resolves before an fdatasync covering its bytes', async () => {
  const root = await tempDir('pipeline');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: true });
  const s = spy(3);
  // seq -> bytes durable when its append resolved.
  const durableAtResolve = new Map<number, number>();
  let rng = 42;
  const random = () => ((rng = (rng * 1103515245 + 12345) >>> 0) / 2 ** 32);
  // Independent appenders (not in lock-step): each waits a little between its appends, so new
  // records keep arriving while an fdatasync is in flight and the pipeline has something to write.
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
  (fs as any).write = realWrite;
  (fs as any).fdatasync = realFdatasync;

  const ends = lineEnds(await fs.promises.readFile(join(dir, segmentName(1))));
  assert.is(durableAtResolve.size, ends.length, 'every record appended resolved once');
  const early: number[] = [];
  for (const [seq, durable] of durableAtResolve) if (ends[seq - 1] > durable) early.push(seq);
  assert.equal(early, [], 'resolved before an fdatasync covering its bytes');
  assert.ok(s.overlapped > 0, `the pipeline was exercised: a write ran while an fdatasync was in flight (${s.overlapped} times)`);
  assert.is(s.maxSyncsInFlight, 1, 'one fdatasync at a time');
  assert.ok(s.syncs < durableAtResolve.size, `group commit still batches: ${s.syncs} fdatasyncs for ${durableAtResolve.size} records`);

  // What was acknowledged reads back, in order.
  const again = await openJournal({ dir, durable: true });
  assert.equal(again.tail.map((r) => r.seq), Array.from({ length: ends.length }, (_, i) => i + 1));
  await again.journal.close();
});

test('a failed fdatasync fails the batch written behind it too, and every later append', async () => {
  const root = await tempDir('pipeline-fail');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: true });
  await journal.append([started('ok')]);
  const s = spy(20);
  s.failNext = true;
  const a = journal.append([started('a')]).then(() => 'resolved', (e) => e.code);
  // Wait until A's fdatasync is in flight, then append B: it is written while that fdatasync runs.
  while (s.syncs === 0) await new Promise((r) => setTimeout(r, 1));
  s.failNext = false;
  const b = journal.append([started('b')]).then(() => 'resolved', (e) => e.code);
  assert.equal([await a, await b], ['CLOSED', 'CLOSED']);
  assert.ok(s.overlapped > 0, 'B was written while A was being synced');
  assert.is(s.syncs, 1, "B's bytes were never synced, so B could not resolve");
  assert.is(journal.lastSeq, 1, 'only the record synced before the failure counts as on disk');
  const c = await journal.append([started('c')]).catch((e) => e);
  assert.is(c.code, 'CLOSED');
  await journal.close();
});

test.run();
