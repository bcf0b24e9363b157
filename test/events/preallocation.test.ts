/**
 * Preallocated segments: a durable journal writes the next segment ahead, full of NUL bytes, and
 * rolls into it (the next writer too); the filler is cut on close and at start-up, and the holes a crash can leave in
 * such a segment (two batches in flight, their sectors written in any order) are torn tails
 * within `UNSYNCED_WINDOW` of the data's end and corruption anywhere else.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { join } from 'node:path';
import type { EventInput } from '../../events/catalogue.ts';
import { PREALLOCATED_NAME } from '../../events/group-commit.ts';
import { openJournal } from '../../events/journal.ts';
import { encodeRecord } from '../../events/record.ts';
import { PREALLOCATED_BATCH_MAX, UNSYNCED_WINDOW, segmentName } from '../../events/segments.ts';
import { readJournalImage } from '../../cli/replay.ts';
import { lineStarts, rejection, started, tempDir } from './helpers.ts';

const SEGMENT = /^\d{12}\.jsonl$/;

async function segments(dir: string): Promise<string[]> {
  return (await fs.promises.readdir(dir)).filter((n) => SEGMENT.test(n)).sort();
}

/** Writes records `first..first+count-1` (container.started, as `started` makes them) as one segment file. */
function writeSegment(dir: string, first: number, count: number, tail: Buffer = Buffer.alloc(0)): Buffer {
  fs.mkdirSync(dir, { recursive: true });
  let text = '';
  for (let seq = first; seq < first + count; seq++) text += encodeRecord({ seq, v: 1, ...started(`c${seq}`) });
  const buf = Buffer.from(text);
  fs.writeFileSync(join(dir, segmentName(first)), Buffer.concat([buf, tail]));
  return buf;
}

test('the next segment is preallocated once the current one is half full, and a closed journal is plain lines', async () => {
  const root = await tempDir('prealloc');
  const dir = join(root, 'journal');
  const segmentBytes = 8192;
  const { journal } = await openJournal({ dir, durable: true, segmentBytes });
  let seq = 0;
  const appendOne = async () => (await journal.append([started(`c${++seq}`)]))[0];
  await appendOne();
  while (fs.statSync(join(dir, segmentName(1))).size * 2 < segmentBytes) await appendOne();
  await (journal as unknown as { preallocation: Promise<void> }).preallocation;
  const ahead = await fs.promises.readFile(join(dir, PREALLOCATED_NAME));
  assert.is(ahead.length, segmentBytes);
  assert.ok(ahead.every((b) => b === 0), 'the next segment is NUL filler');
  while ((await segments(dir)).length < 2) await appendOne();
  const second = join(dir, (await segments(dir))[1]);
  assert.not.ok(fs.existsSync(join(dir, PREALLOCATED_NAME)), 'renamed into place');
  const live = await fs.promises.readFile(second);
  assert.is(live.length, segmentBytes, 'while open, the segment runs on in filler');
  const firstRecord = live.indexOf(0x0a) + 1;
  assert.ok(firstRecord > 0 && live.subarray(firstRecord).every((b) => b === 0), 'one record, then filler');
  // The replay debugger reads a live journal as start-up would: the filler is not a torn tail.
  const image = await readJournalImage(dir);
  assert.is(image.torn, null);
  assert.is(image.records.length, seq);
  await journal.close();
  assert.not.ok(fs.existsSync(join(dir, PREALLOCATED_NAME)));
  for (const name of await segments(dir)) {
    const buf = await fs.promises.readFile(join(dir, name));
    assert.not.ok(buf.includes(0), `${name} holds no NUL byte at rest`);
    assert.is(buf[buf.length - 1], 0x0a, `${name} ends with a whole line`);
  }
  const again = await openJournal({ dir, durable: true, segmentBytes });
  assert.equal(again.tail.map((r) => r.seq), Array.from({ length: seq }, (_, i) => i + 1));
  assert.is(again.repaired, null);
  await again.journal.close();
});

test('a next segment written ahead is kept when the journal closes, and the next writer rolls into it', async () => {
  const root = await tempDir('prealloc-keep');
  const dir = join(root, 'journal');
  const ahead = join(dir, PREALLOCATED_NAME);
  const segmentBytes = 8192;
  let seq = 0;
  const a = await openJournal({ dir, durable: true, segmentBytes });
  await a.journal.append([started(`c${++seq}`)]);
  while (fs.statSync(join(dir, segmentName(1))).size * 2 < segmentBytes) await a.journal.append([started(`c${++seq}`)]);
  await a.journal.close();
  assert.is(fs.statSync(ahead).size, segmentBytes, 'close finishes it and keeps it');
  const b = await openJournal({ dir, durable: true, segmentBytes });
  while ((await segments(dir)).length < 2) await b.journal.append([started(`c${++seq}`)]);
  assert.not.ok(fs.existsSync(ahead), 'rolled into');
  assert.is(fs.statSync(join(dir, (await segments(dir))[1])).size, segmentBytes);
  await b.journal.close();
  fs.writeFileSync(ahead, Buffer.alloc(100));
  const c = await openJournal({ dir, durable: true, segmentBytes });
  assert.not.ok(fs.existsSync(ahead), 'one of another size (cut short by a crash) is removed');
  assert.is(c.tail.length, seq);
  await c.journal.close();
});

test('a batch over PREALLOCATED_BATCH_MAX in a preallocated segment starts a plain one', async () => {
  const root = await tempDir('prealloc-big');
  const dir = join(root, 'journal');
  const segmentBytes = 4 * PREALLOCATED_BATCH_MAX;
  const { journal } = await openJournal({ dir, durable: true, segmentBytes });
  let seq = 0;
  const batch = (n: number): EventInput[] => Array.from({ length: n }, () => started(`c${++seq}`));
  while ((await segments(dir)).length < 2) {
    await journal.append(batch(200));
    await (journal as unknown as { preallocation: Promise<void> }).preallocation;
  }
  const prefilled = join(dir, (await segments(dir))[1]);
  assert.is(fs.statSync(prefilled).size, segmentBytes, 'rolled into a preallocated segment');
  const big = started('x'.repeat(PREALLOCATED_BATCH_MAX));
  const [r] = await journal.append([big]);
  const names = await segments(dir);
  assert.is(names.length, 3);
  assert.is(names[2], segmentName(r.seq));
  const line = encodeRecord({ seq: r.seq, v: 1, ...big });
  assert.ok(line.length > PREALLOCATED_BATCH_MAX);
  assert.is(fs.statSync(join(dir, names[2])).size, line.length, "the big batch's segment is plain: no filler after it");
  assert.ok(fs.statSync(prefilled).size < segmentBytes, 'the preallocated one lost its filler when rolled past');
  await journal.close();
});

test('a crash in a preallocated segment: start-up cuts the filler and keeps nothing aside', async () => {
  const root = await tempDir('prealloc-crash');
  const dir = join(root, 'journal');
  const data = writeSegment(dir, 1, 5, Buffer.alloc(64 * 1024));
  fs.writeFileSync(join(dir, PREALLOCATED_NAME), Buffer.alloc(4096));
  const opened = await openJournal({ dir, durable: true });
  assert.equal(opened.tail.map((r) => r.seq), [1, 2, 3, 4, 5]);
  assert.is(opened.repaired, null, 'filler is not a torn record');
  assert.is(fs.statSync(join(dir, segmentName(1))).size, data.length);
  assert.not.ok(fs.existsSync(join(dir, PREALLOCATED_NAME)), 'a next segment cut short is removed');
  assert.equal((await fs.promises.readdir(dir)).filter((n) => n.startsWith('torn-')), []);
  const [next] = await opened.journal.append([started('after')]);
  assert.is(next.seq, 6);
  await opened.journal.close();
});

test('a preallocated segment that got no record before the crash is emptied, and the sequence goes on', async () => {
  const root = await tempDir('prealloc-empty');
  const dir = join(root, 'journal');
  writeSegment(dir, 1, 3);
  fs.writeFileSync(join(dir, segmentName(4)), Buffer.alloc(8192));
  const opened = await openJournal({ dir, durable: true });
  assert.equal(opened.tail.map((r) => r.seq), [1, 2, 3]);
  assert.is(fs.statSync(join(dir, segmentName(4))).size, 0);
  const [next] = await opened.journal.append([started('after')]);
  assert.is(next.seq, 4);
  await opened.journal.close();
  const again = await openJournal({ dir, durable: true });
  assert.equal(again.tail.map((r) => r.seq), [1, 2, 3, 4]);
  await again.journal.close();
});

test('a hole with records after it, near the end of the last segment, is a torn tail', async () => {
  const root = await tempDir('prealloc-hole');
  const dir = join(root, 'journal');
  const data = writeSegment(dir, 1, 10);
  const starts = lineStarts(data);
  // Record 7 and half of 8 never reached the disk; 9 and 10 (a later batch) did.
  const image = Buffer.concat([data, Buffer.alloc(4096)]);
  image.fill(0, starts[6], starts[7] + 10);
  fs.writeFileSync(join(dir, segmentName(1)), image);
  const opened = await openJournal({ dir, durable: true });
  assert.equal(opened.tail.map((r) => r.seq), [1, 2, 3, 4, 5, 6]);
  assert.ok(opened.repaired);
  assert.is(opened.repaired!.offset, starts[6]);
  assert.is(opened.repaired!.bytes, data.length - starts[6], 'kept up to the data, filler excluded');
  assert.ok(fs.readFileSync(opened.repaired!.keptAt).equals(image.subarray(starts[6], data.length)));
  assert.is(fs.statSync(join(dir, segmentName(1))).size, starts[6]);
  const [next] = await opened.journal.append([started('after')]);
  assert.is(next.seq, 7);
  await opened.journal.close();
});

test('a hole farther than UNSYNCED_WINDOW from the data end, or in an earlier segment, is corruption', async () => {
  // Far from the end: more valid records follow than two batches could hold.
  const far = join(await tempDir('prealloc-far'), 'journal');
  const many = Math.ceil(UNSYNCED_WINDOW / 100) + 10;
  const data = writeSegment(far, 1, many);
  const starts = lineStarts(data);
  const image = Buffer.concat([data, Buffer.alloc(4096)]);
  image.fill(0, starts[6], starts[7]);
  fs.writeFileSync(join(far, segmentName(1)), image);
  assert.ok(data.length - starts[6] > UNSYNCED_WINDOW);
  const err = await rejection(openJournal({ dir: far, durable: true }));
  assert.is(err.code, 'JOURNAL_CORRUPT');
  assert.equal(err.info, { seq: 7, offset: starts[6], segment: join(far, segmentName(1)) });
  assert.ok(fs.readFileSync(join(far, segmentName(1))).equals(image), 'committed history is untouched');

  // In a segment that is not the last: every batch in it was synced before the roll.
  const early = join(await tempDir('prealloc-early'), 'journal');
  const first = writeSegment(early, 1, 10);
  const s = lineStarts(first);
  const holed = Buffer.from(first);
  holed.fill(0, s[6], s[7]);
  fs.writeFileSync(join(early, segmentName(1)), holed);
  writeSegment(early, 11, 2);
  const err2 = await rejection(openJournal({ dir: early, durable: true }));
  assert.is(err2.code, 'JOURNAL_CORRUPT');
  assert.equal(err2.info, { seq: 7, offset: s[6], segment: join(early, segmentName(1)) });
});

test('an earlier segment left with filler (a crash right after a roll) is read whole', async () => {
  const root = await tempDir('prealloc-roll');
  const dir = join(root, 'journal');
  writeSegment(dir, 1, 4, Buffer.alloc(8192));
  writeSegment(dir, 5, 3);
  const opened = await openJournal({ dir, durable: true });
  assert.equal(opened.tail.map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7]);
  assert.is(opened.repaired, null);
  await opened.journal.close();
});

test.run();
