/**
 * A bad record with valid records after it is corruption, not a torn write: opening refuses with
 * JOURNAL_CORRUPT naming the segment, the seq expected there and the byte offset, and changes nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { join } from 'node:path';
import { openJournal } from '../../events/journal.ts';
import { segmentName } from '../../events/segments.ts';
import { copyDir, lineStarts, rejection, started, tempDir } from './helpers.ts';

const N = 6;

async function pristine(segmentBytes?: number) {
  const root = await tempDir('corrupt');
  const { journal } = await openJournal({ dir: join(root, 'journal'), durable: false, segmentBytes });
  for (let i = 1; i <= N; i++) await journal.append([started(`c${i}`)]);
  await journal.close();
  return root;
}

async function expectCorrupt(root: string, seg: string, seq: number, offset: number) {
  const before = await fs.promises.readFile(seg);
  const err = await rejection(openJournal({ dir: join(root, 'journal'), durable: true }));
  assert.is(err.code, 'JOURNAL_CORRUPT');
  assert.equal(err.info, { seq, offset, segment: seg });
  assert.ok(err.message.includes(seg));
  assert.ok((await fs.promises.readFile(seg)).equals(before), 'committed history is untouched');
}

test('a flipped byte in record k of several is refused with its seq and offset', async () => {
  const base = await pristine();
  const buf = await fs.promises.readFile(join(base, 'journal', segmentName(1)));
  const starts = lineStarts(buf);
  for (let k = 1; k < N; k++) {
    for (const where of ['middle', 'newline'] as const) {
      const root = await tempDir('corrupt-case');
      await copyDir(base, root);
      const seg = join(root, 'journal', segmentName(1));
      const bad = Buffer.from(buf);
      const lineEnd = (k < N ? starts[k] : buf.length) - 1;
      // Flipping the newline merges record k with k+1: one bad line, valid ones after it.
      const at = where === 'middle' ? starts[k - 1] + 25 : lineEnd;
      bad[at] ^= 0x04;
      await fs.promises.writeFile(seg, bad);
      if (where === 'newline' && k === N - 1) {
        // Records 5 and 6 merged into the last line: nothing valid follows, so it is a torn tail.
        const opened = await openJournal({ dir: join(root, 'journal'), durable: true });
        assert.is(opened.repaired!.offset, starts[k - 1]);
        await opened.journal.close();
        continue;
      }
      await expectCorrupt(root, seg, k, starts[k - 1]);
    }
  }
});

test('a gap or repeat in the sequence is corruption', async () => {
  const base = await pristine();
  const seg = join(base, 'journal', segmentName(1));
  const buf = await fs.promises.readFile(seg);
  const starts = lineStarts(buf);
  // Drop record 3.
  await fs.promises.writeFile(seg, Buffer.concat([buf.subarray(0, starts[2]), buf.subarray(starts[3])]));
  await expectCorrupt(base, seg, 3, starts[2]);
  // Repeat record 2.
  await fs.promises.writeFile(seg, Buffer.concat([buf.subarray(0, starts[2]), buf.subarray(starts[1])]));
  await expectCorrupt(base, seg, 3, starts[2]);
});

test('a torn end in a segment that is not the last one is corruption', async () => {
  const base = await pristine(300);
  const segs = (await fs.promises.readdir(join(base, 'journal'))).filter((n) => n.endsWith('.jsonl')).sort();
  assert.ok(segs.length >= 2, 'several segments');
  const first = join(base, 'journal', segs[0]);
  const buf = await fs.promises.readFile(first);
  const starts = lineStarts(buf);
  const lastStart = starts[starts.length - 1];
  await fs.promises.truncate(first, lastStart + 5);
  await expectCorrupt(base, first, starts.length, lastStart);
});

test('a missing middle segment is corruption', async () => {
  const base = await pristine(300);
  const segs = (await fs.promises.readdir(join(base, 'journal'))).filter((n) => n.endsWith('.jsonl')).sort();
  assert.ok(segs.length >= 3, 'three segments');
  await fs.promises.rm(join(base, 'journal', segs[1]));
  const err = await rejection(openJournal({ dir: join(base, 'journal'), durable: true }));
  assert.is(err.code, 'JOURNAL_CORRUPT');
  assert.is(err.info.seq, Number(segs[1].slice(0, 12)));
  assert.is(err.info.segment, join(base, 'journal', segs[2]));
});

test.run();
