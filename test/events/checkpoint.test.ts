/**
 * A checkpoint at seq N plus the tail after it folds to the same state as the whole journal, and
 * opening never reads the segments wholly below N.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { join } from 'node:path';
import type { JournalRecord } from '../../events/catalogue.ts';
import { CHECKPOINT_VERSION, checkpointName } from '../../events/checkpoint.ts';
import { openJournal } from '../../events/journal.ts';
import { segmentName as segmentNameOf } from '../../events/segments.ts';
import { collect, rejection, started, tempDir } from './helpers.ts';

interface State { readonly count: number; readonly perKey: Readonly<Record<string, number>>; readonly lastSeq: number }
const initial: State = { count: 0, perKey: {}, lastSeq: 0 };
function fold(s: State, r: JournalRecord): State {
  return { count: s.count + 1, perKey: { ...s.perKey, [r.key]: (s.perKey[r.key] ?? 0) + 1 }, lastSeq: r.seq };
}

async function build(root: string, total: number, checkpointsAt: number[]) {
  const { journal } = await openJournal<State>({ dir: join(root, 'journal'), durable: true, segmentBytes: 1500 });
  let state = initial;
  for (let seq = 1; seq <= total; ) {
    const batch = Array.from({ length: Math.min(3, total - seq + 1) }, (_, i) => started(`c${(seq + i) % 7}`));
    for (const r of await journal.append(batch)) state = fold(state, r);
    seq += batch.length;
    for (const at of checkpointsAt) if (state.lastSeq >= at && state.lastSeq - batch.length < at) await journal.writeCheckpoint(state.lastSeq, state);
  }
  await journal.close();
  return state;
}

test('checkpoint + tail folds to the same state as all records', async () => {
  const root = await tempDir('cp');
  const full = await build(root, 100, [60]);
  const opened = await openJournal<State>({ dir: join(root, 'journal'), durable: true });
  assert.ok(opened.checkpoint);
  const n = opened.checkpoint!.seq;
  assert.ok(n >= 60 && n < 63);
  assert.equal(opened.tail.map((r) => r.seq), Array.from({ length: 100 - n }, (_, i) => n + 1 + i));
  assert.equal(opened.tail.reduce(fold, opened.checkpoint!.state), full);
  const all = await collect(opened.journal.readAll());
  assert.is(all.length, 100);
  assert.equal(all.reduce(fold, initial), full);
  assert.equal((await collect(opened.journal.readAll(n + 1))).map((r) => r.seq), opened.tail.map((r) => r.seq));
  await opened.journal.close();
});

test('segments wholly below the checkpoint are not read at start-up', async () => {
  const root = await tempDir('cp-skip');
  await build(root, 100, [80]);
  const segs = (await fs.promises.readdir(join(root, 'journal'))).filter((n) => n.endsWith('.jsonl')).sort();
  assert.ok(segs.length >= 4);
  // Garbage in the middle of the first segment: only noticed by a reader that parses it.
  const first = join(root, 'journal', segs[0]);
  const buf = await fs.promises.readFile(first);
  buf[30] ^= 0xff;
  await fs.promises.writeFile(first, buf);
  const opened = await openJournal<State>({ dir: join(root, 'journal'), durable: true });
  assert.ok(opened.checkpoint!.seq >= 80);
  // The full history reader does parse it, and refuses.
  const err = await rejection(collect(opened.journal.readAll()));
  assert.is(err.code, 'JOURNAL_CORRUPT');
  await opened.journal.close();
});

test('records under the checkpoint in the segment the tail starts in are still checksummed', async () => {
  // One segment, so the checkpoint's records share it with the tail.
  const root1 = await tempDir('cp-verify');
  const { journal } = await openJournal<State>({ dir: join(root1, 'journal'), durable: true });
  let state = initial;
  for (let i = 0; i < 30; i++) for (const r of await journal.append([started(`c${i % 7}`)])) state = fold(state, r);
  await journal.writeCheckpoint(20, { ...state, lastSeq: 20 });
  await journal.close();
  const seg = join(root1, 'journal', segmentNameOf(1));
  const buf = await fs.promises.readFile(seg);
  const starts = [0];
  for (let at = buf.indexOf(0x0a); at >= 0 && at + 1 < buf.length; at = buf.indexOf(0x0a, at + 1)) starts.push(at + 1);
  // A flipped bit in record 10 (covered by the checkpoint, so never parsed at start-up).
  buf[starts[9] + 40] ^= 0x01;
  await fs.promises.writeFile(seg, buf);
  const err = await rejection(openJournal<State>({ dir: join(root1, 'journal'), durable: true }));
  assert.is(err.code, 'JOURNAL_CORRUPT');
  assert.equal(err.info, { seq: 10, offset: starts[9], segment: seg });
});

test('a corrupt or partial checkpoint falls back to the previous one, then to full replay', async () => {
  const root = await tempDir('cp-bad');
  const full = await build(root, 90, [30, 60, 75]);
  const cps = (await fs.promises.readdir(join(root, 'checkpoints'))).sort();
  assert.is(cps.length, 2, 'only the last two are kept');
  const [older, newer] = cps.map((n) => join(root, 'checkpoints', n));
  await fs.promises.truncate(newer, 20);
  let opened = await openJournal<State>({ dir: join(root, 'journal'), durable: true });
  assert.is(checkpointName(opened.checkpoint!.seq), older.split('/').pop());
  assert.equal(opened.tail.reduce(fold, opened.checkpoint!.state), full);
  await opened.journal.close();
  const text = await fs.promises.readFile(older, 'utf8');
  await fs.promises.writeFile(older, text.replace('"count":', '"count":1'));
  opened = await openJournal<State>({ dir: join(root, 'journal'), durable: true });
  assert.is(opened.checkpoint, null);
  assert.is(opened.tail.length, 90);
  assert.equal(opened.tail.reduce(fold, initial), full);
  await opened.journal.close();
});

test('a checkpoint is written atomically and only for records on disk', async () => {
  const root = await tempDir('cp-atomic');
  const { journal } = await openJournal<State>({ dir: join(root, 'journal'), durable: true });
  const recs = await journal.append([started('a'), started('b')]);
  const err = await rejection(journal.writeCheckpoint(3, initial));
  assert.is(err.code, 'INVALID_ARGUMENT');
  await journal.writeCheckpoint(recs[1].seq, recs.reduce(fold, initial));
  const names = await fs.promises.readdir(join(root, 'checkpoints'));
  assert.equal(names, [checkpointName(2)]);
  const parsed = JSON.parse(await fs.promises.readFile(join(root, 'checkpoints', names[0]), 'utf8'));
  assert.is(parsed.seq, 2);
  assert.is(parsed.v, CHECKPOINT_VERSION);
  assert.is(parsed.state.count, 2);
  // A temp file left by a crash mid-write is ignored and cleaned up.
  await fs.promises.writeFile(join(root, 'checkpoints', `${checkpointName(2)}.tmp`), '{"seq":2');
  await journal.close();
  const opened = await openJournal<State>({ dir: join(root, 'journal'), durable: true });
  assert.is(opened.checkpoint!.seq, 2);
  assert.equal(opened.tail, []);
  assert.equal(await fs.promises.readdir(join(root, 'checkpoints')), [checkpointName(2)]);
  await opened.journal.close();
});

test('a checkpoint ahead of the journal is refused', async () => {
  const root = await tempDir('cp-ahead');
  await build(root, 10, [9]);
  await fs.promises.rm(join(root, 'journal'), { recursive: true });
  const err = await rejection(openJournal({ dir: join(root, 'journal'), durable: true }));
  assert.is(err.code, 'JOURNAL_CORRUPT');
});

test.run();
