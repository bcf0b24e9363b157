/**
 * Preallocated segments: a durable journal writes the next segment ahead, full of NUL bytes, and
 * rolls into it (the next writer too); the filler is cut on close and at start-up, and the holes a crash can leave in
 * such a segment (two batches in flight, their sectors written in any order) are torn tails
 * within `UNSYNCED_WINDOW` of the data's end and corruption anywhere else.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import fs from 'node:fs';
import { join } from 'node:path';
import type { EventInput } from '../../events/catalogue.ts';
import { openJournal } from '../../events/journal.ts';
import { encodeRecord } from '../../events/record.ts';
import { PREALLOCATED_BATCH_MAX, PREALLOCATED_NAME, UNSYNCED_WINDOW } from '../../events/preallocation.ts';
import { listSegments, scanSegment, segmentName } from '../../events/segments.ts';
import { readJournalImage } from '../../replay/image.ts';
import { lineStarts, rejection, started, tempDir } from './helpers.ts';

async function segments(dir: string): Promise<string[]> {
  return (await listSegments(dir)).map((s) => s.name);
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
  assert.is(image.damage, null);
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
  // A crash lost the rename of a next segment after its first batch was written into it.
  const lostRename = Buffer.alloc(segmentBytes);
  lostRename.write(encodeRecord({ seq: seq + 1, v: 1, ...started('never-acknowledged') }));
  fs.writeFileSync(ahead, lostRename);
  const d = await openJournal({ dir, durable: true, segmentBytes });
  assert.not.ok(fs.existsSync(ahead), 'one holding records is not a next segment: removed');
  assert.is(d.tail.length, seq);
  await d.journal.close();
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

test('the real writer, crashed mid-stream in a preallocated segment with unsynced sectors lost, keeps every acknowledged record', async () => {
  const root = await tempDir('prealloc-live');
  const dir = join(root, 'journal');
  const segmentBytes = 256 * 1024;
  const { journal } = await openJournal({ dir, durable: true, segmentBytes });
  let seq = 0;
  while ((await segments(dir)).length < 2) {
    await journal.append(Array.from({ length: 100 }, () => started(`c${++seq}`)));
    await (journal as unknown as { preallocation: Promise<void> }).preallocation;
  }
  const segPath = join(dir, (await segments(dir))[1]);
  assert.is(fs.statSync(segPath).size, segmentBytes, 'appending into a preallocated segment');
  // Spy: the bytes written (by offset) and those a completed fdatasync covers.
  const realWriteSync = fs.writeSync;
  const realFdatasync = fs.fdatasync;
  let written = 0;
  let durable = 0;
  let maxUnsynced = 0;
  let rng = 7;
  const random = () => ((rng = (rng * 1103515245 + 12345) >>> 0) / 2 ** 32);
  (fs as any).writeSync = (fd: number, buf: Buffer, off: number, len: number, pos: number) => {
    const n = realWriteSync(fd, buf, off, len, pos);
    written = Math.max(written, pos + n);
    maxUnsynced = Math.max(maxUnsynced, written - durable);
    return n;
  };
  (fs as any).fdatasync = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    const covered = written;
    realFdatasync(fd, (err) => setTimeout(() => {
      if (!err) durable = Math.max(durable, covered);
      cb(err);
    }, Math.floor(random() * 3)));
  };
  let image: Buffer | null = null;
  let ackedAtCrash = 0;
  let unsyncedAtCrash = 0;
  let lastAcked = 0;
  try {
    const appender = async (w: number) => {
      for (let i = 0; i < 40 && image === null; i++) {
        const [r] = await journal.append([started(`w${w}-${i}`)]);
        lastAcked = Math.max(lastAcked, r.seq);
        if (image === null && r.seq > seq + 1500) {
          // The crash: what the page cache holds now, and what is acknowledged.
          image = fs.readFileSync(segPath);
          ackedAtCrash = lastAcked;
          const lost = { from: durable, to: written };
          unsyncedAtCrash = written - durable;
          for (let sector = lost.from & ~511; sector < lost.to; sector += 512) {
            if (random() < 0.5) image.fill(0, Math.max(sector, lost.from), Math.min(sector + 512, lost.to));
          }
        }
        if (random() < 0.3) await new Promise((r) => setTimeout(r, 1));
      }
    };
    await Promise.all(Array.from({ length: 64 }, (_, w) => appender(w)));
  } finally {
    (fs as any).writeSync = realWriteSync;
    (fs as any).fdatasync = realFdatasync;
  }
  await journal.close();
  assert.ok(image !== null && ackedAtCrash > seq, 'crashed mid-stream');
  assert.ok(unsyncedAtCrash > 0, 'with a batch written and not yet synced');
  assert.ok(maxUnsynced <= UNSYNCED_WINDOW, `unsynced bytes stayed within the window: ${maxUnsynced}`);
  fs.writeFileSync(segPath, image!);
  const opened = await openJournal({ dir, durable: true, segmentBytes });
  const seqs = opened.tail.map((r) => r.seq);
  assert.equal(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
  assert.ok(seqs.length >= ackedAtCrash, `every acknowledged record is back: ${seqs.length} >= ${ackedAtCrash}`);
  await opened.journal.close();
});

const SEED = Number(process.env.ATELIER_PREALLOC_SEED ?? 20261201);

test('a crash losing any sectors of the unsynced batches keeps every acknowledged record (property)', () => {
  console.log(`preallocation: seed ${SEED}`);
  const line = (seq: number, pad: number) => encodeRecord({ seq, v: 1, ...started(`c${seq}-${'p'.repeat(pad)}`) });
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 400 }),
      fc.integer({ min: 0, max: 8192 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (acked, pads, filler, lossRate, lossSeed) => {
        let synced = '';
        for (let seq = 1; seq <= acked; seq++) synced += line(seq, seq % 7);
        const unsyncedLines = pads.map((pad, i) => line(acked + 1 + i, pad));
        const unsynced = Buffer.from(unsyncedLines.join(''));
        fc.pre(unsynced.length <= UNSYNCED_WINDOW);
        const head = Buffer.from(synced);
        const image = Buffer.concat([head, unsynced, Buffer.alloc(filler)]);
        // Sectors of the unsynced bytes the disk never wrote read as the filler they overwrote.
        let rng = lossSeed;
        const random = () => ((rng = (rng * 1103515245 + 12345) >>> 0) / 2 ** 32);
        let lostAt = -1;
        for (let sector = head.length & ~511; sector < head.length + unsynced.length; sector += 512) {
          if (random() >= lossRate) continue;
          const from = Math.max(sector, head.length);
          image.fill(0, from, Math.min(sector + 512, head.length + unsynced.length));
          if (lostAt < 0) lostAt = from;
        }
        const seqs: number[] = [];
        const scan = scanSegment({ name: segmentName(1), path: segmentName(1), first: 1 }, image, 1, true, 0, (r) => void seqs.push(r.seq));
        // Every acknowledged record, then the unsynced ones up to the first lost byte.
        const kept = seqs.length;
        assert.ok(kept >= acked, `acknowledged records lost: kept ${kept} of ${acked}`);
        assert.equal(seqs, Array.from({ length: kept }, (_, i) => i + 1));
        let end = head.length;
        for (let i = 0; i < kept - acked; i++) end += Buffer.byteLength(unsyncedLines[i]);
        if (lostAt < 0) assert.is(kept, acked + pads.length, 'nothing lost, nothing cut');
        else {
          assert.ok(end <= lostAt, 'no record past the first lost byte is taken');
          // The rest is a torn tail, or only NUL (all of it lost): filler, nothing to keep.
          if (scan.torn) assert.is(scan.torn.offset, end);
          else assert.is(scan.end, end);
        }
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});

test.run();
