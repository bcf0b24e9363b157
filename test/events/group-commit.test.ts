/**
 * Concurrent appends are group-committed: fewer fdatasyncs than appends, sequence order = call
 * order, and no append resolves before an fdatasync covering its bytes has completed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { join } from 'node:path';
import { openJournal } from '../../events/journal.ts';
import { segmentName } from '../../events/segments.ts';
import { started, tempDir } from './helpers.ts';

const realFdatasync = fs.fdatasync;
const realFdatasyncSync = fs.fdatasyncSync;

/** Spies on fs.fdatasync: counts calls and tracks how many lines of `seg` were durable at the last completed one. */
function spy(seg: string) {
  const s = { calls: 0, durableLines: 0 };
  (fs as any).fdatasync = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    s.calls++;
    // Everything in the file when fdatasync starts is durable once it completes.
    const lines = fs.readFileSync(seg).toString('latin1').split('\n').length - 1;
    realFdatasync(fd, (err) => {
      if (!err) s.durableLines = Math.max(s.durableLines, lines);
      cb(err);
    });
  };
  return s;
}

test.after.each(() => {
  (fs as any).fdatasync = realFdatasync;
  (fs as any).fdatasyncSync = realFdatasyncSync;
});

test('200 concurrent appends: ordered, fewer fdatasyncs, each resolved only once synced', async () => {
  const root = await tempDir('group');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: true });
  const s = spy(join(dir, segmentName(1)));
  const violations: number[] = [];
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      journal.append([started(`c${i}`)]).then((recs) => {
        if (recs[0].seq > s.durableLines) violations.push(recs[0].seq);
        return recs[0];
      }),
    ),
  );
  assert.equal(violations, [], 'resolved before its fdatasync');
  assert.equal(results.map((r) => r.seq), Array.from({ length: 200 }, (_, i) => i + 1), 'seq order = call order');
  assert.equal(results.map((r) => r.key), Array.from({ length: 200 }, (_, i) => `c${i}`));
  assert.ok(s.calls >= 1 && s.calls < 200, `fdatasync calls: ${s.calls}`);
  assert.is(journal.lastSeq, 200);
  await journal.close();
  (fs as any).fdatasync = realFdatasync;
  const again = await openJournal({ dir, durable: true });
  assert.equal(again.tail.map((r) => [r.seq, r.key]), results.map((r) => [r.seq, r.key]));
  await again.journal.close();
});

test('appends made while a flush is in flight share the next one', async () => {
  const root = await tempDir('group-waves');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: true });
  const s = spy(join(dir, segmentName(1)));
  const first = journal.append([started('first')]);
  await Promise.resolve();
  await Promise.resolve();
  // The first flush has started; these 50 queue behind it.
  const rest = Array.from({ length: 50 }, (_, i) => journal.append([started(`w${i}`), started(`x${i}`)]));
  const all = await Promise.all([first, ...rest]);
  assert.ok(s.calls <= 3, `fdatasync calls: ${s.calls}`);
  // Multi-event appends get consecutive seqs.
  all.slice(1).forEach((recs, i) => assert.equal(recs.map((r) => r.seq), [2 + 2 * i, 3 + 2 * i]));
  await journal.close();
});

test('sequential appends each wait for their own fdatasync', async () => {
  const root = await tempDir('group-seq');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: true });
  const s = spy(join(dir, segmentName(1)));
  for (let i = 1; i <= 10; i++) {
    const [r] = await journal.append([started(`s${i}`)]);
    assert.is(r.seq, i);
    assert.ok(s.durableLines >= i);
  }
  assert.is(s.calls, 10);
  await journal.close();
});

test('segments roll past segmentBytes and are read back in order', async () => {
  const root = await tempDir('group-roll');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: false, segmentBytes: 1000 });
  for (let i = 0; i < 10; i++) await Promise.all(Array.from({ length: 5 }, (_, j) => journal.append([started(`r${i}-${j}`)])));
  await journal.close();
  const names = (await fs.promises.readdir(dir)).sort();
  assert.ok(names.length > 3, `segments: ${names}`);
  for (const n of names) {
    const first = Number(n.slice(0, 12));
    const line = (await fs.promises.readFile(join(dir, n), 'utf8')).split('\n')[0];
    assert.is(JSON.parse(line).seq, first, 'a segment is named by its first seq');
  }
  const again = await openJournal({ dir, durable: false, segmentBytes: 1000 });
  assert.equal(again.tail.map((r) => r.seq), Array.from({ length: 50 }, (_, i) => i + 1));
  const [next] = await again.journal.append([started('next')]);
  assert.is(next.seq, 51);
  await again.journal.close();
});

test('closed journals and unknown event types are refused', async () => {
  const root = await tempDir('group-closed');
  const { journal } = await openJournal({ dir: join(root, 'journal'), durable: true });
  const bad = await journal.append([{ type: 'nope', key: 'k', data: {} } as any]).catch((e) => e);
  assert.is(bad.code, 'INVALID_ARGUMENT');
  const pending = journal.append([started('a')]);
  await journal.close();
  assert.is((await pending)[0].seq, 1, 'close waits for queued appends');
  const err = await journal.append([started('b')]).catch((e) => e);
  assert.is(err.code, 'CLOSED');
});

test('a failed fdatasync fails the batch and every later append', async () => {
  const root = await tempDir('group-fail');
  const { journal } = await openJournal({ dir: join(root, 'journal'), durable: true });
  (fs as any).fdatasync = (_fd: number, cb: (err: NodeJS.ErrnoException) => void) => cb(Object.assign(new Error('EIO'), { code: 'EIO' }));
  const [a, b] = await Promise.all([journal.append([started('a')]).catch((e) => e), journal.append([started('b')]).catch((e) => e)]);
  assert.is(a.code, 'CLOSED');
  assert.is(b.code, 'CLOSED');
  (fs as any).fdatasync = realFdatasync;
  const c = await journal.append([started('c')]).catch((e) => e);
  assert.is(c.code, 'CLOSED');
  assert.is(journal.lastSeq, 0);
  await journal.close();
});

test('syncInline: fdatasync on the event loop, none on the thread pool, each append resolved after its own', async () => {
  const root = await tempDir('group-inline');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: true, syncInline: true });
  const seg = join(dir, segmentName(1));
  const pool = spy(seg);
  let inline = 0;
  let durableLines = 0;
  (fs as any).fdatasyncSync = (fd: number) => {
    inline++;
    const lines = fs.readFileSync(seg).toString('latin1').split('\n').length - 1;
    realFdatasyncSync(fd);
    durableLines = Math.max(durableLines, lines);
  };
  for (let i = 1; i <= 5; i++) {
    const [r] = await journal.append([started(`i${i}`)]);
    assert.is(r.seq, i);
    assert.ok(durableLines >= i, `record ${i} resolved before an fdatasync covered it`);
  }
  // Concurrent appends are still group-committed (two lanes, in order).
  const recs = await Promise.all(Array.from({ length: 100 }, (_, i) => journal.append([started(`c${i}`)])));
  assert.equal(recs.map((r) => r[0].seq), Array.from({ length: 100 }, (_, i) => i + 6));
  assert.ok(durableLines >= 105);
  assert.ok(inline > 5 && inline < 105, `inline fdatasyncs: ${inline}`);
  assert.is(pool.calls, 0, 'no fdatasync went to the thread pool');
  await journal.close();
});

test('syncInline: a failed fdatasync refuses its batch and every later append', async () => {
  const root = await tempDir('group-inline-fail');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: true, syncInline: true });
  await journal.append([started('ok')]);
  (fs as any).fdatasyncSync = () => {
    throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
  };
  const failed = await journal.append([started('lost')]).then(() => null, (e) => e);
  assert.is(failed?.code, 'CLOSED');
  assert.match(failed.message, /EIO/);
  assert.is(journal.lastSeq, 1);
  (fs as any).fdatasyncSync = realFdatasyncSync;
  const later = await journal.append([started('after')]).then(() => null, (e) => e);
  assert.is(later?.code, 'CLOSED');
  await journal.close();
});

test.run();
