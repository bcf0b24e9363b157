/**
 * A crash mid-write leaves the last record torn. Opening must cut it off (keeping its bytes
 * aside), recover every record before it, and continue the sequence from there.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { join } from 'node:path';
import { openJournal } from '../../events/journal.ts';
import { segmentName } from '../../events/segments.ts';
import { collect, copyDir, lineStarts, started, tempDir } from './helpers.ts';

const N = 5;

async function pristine(): Promise<{ root: string; seg: string; buf: Buffer; lastStart: number }> {
  const root = await tempDir('torn');
  const { journal } = await openJournal({ dir: join(root, 'journal'), durable: true });
  for (let i = 1; i <= N; i++) await journal.append([started(`c${i}`)]);
  await journal.close();
  const seg = join(root, 'journal', segmentName(1));
  const buf = await fs.promises.readFile(seg);
  const starts = lineStarts(buf);
  assert.is(starts.length, N);
  return { root, seg, buf, lastStart: starts[N - 1] };
}

async function recoverFrom(root: string, seg: string, expectCut: { offset: number; bytes: Buffer }) {
  const opened = await openJournal({ dir: join(root, 'journal'), durable: true });
  assert.equal(opened.tail.map((r) => r.seq), [1, 2, 3, 4]);
  assert.ok(opened.repaired, 'repaired is reported');
  assert.is(opened.repaired!.segment, seg);
  assert.is(opened.repaired!.offset, expectCut.offset);
  assert.is(opened.repaired!.bytes, expectCut.bytes.length);
  assert.ok((await fs.promises.readFile(opened.repaired!.keptAt)).equals(expectCut.bytes), 'torn bytes kept aside');
  assert.is((await fs.promises.stat(seg)).size, expectCut.offset);
  assert.is(opened.journal.lastSeq, 4);
  const [next] = await opened.journal.append([started('again')]);
  assert.is(next.seq, 5);
  await opened.journal.close();
  const again = await openJournal({ dir: join(root, 'journal'), durable: true });
  assert.is(again.repaired, null);
  assert.equal(again.tail.map((r) => r.seq), [1, 2, 3, 4, 5]);
  assert.is(again.tail[4].key, 'again');
  await again.journal.close();
}

test('a last record cut at every byte offset recovers to the previous record', async () => {
  const p = await pristine();
  const lineLen = p.buf.length - p.lastStart; // newline included
  // Cutting at lineLen - 1 leaves a complete record without its newline: still torn (never acknowledged).
  for (let k = 1; k < lineLen; k++) {
    const root = await tempDir('torn-case');
    await copyDir(p.root, root);
    const seg = join(root, 'journal', segmentName(1));
    await fs.promises.truncate(seg, p.lastStart + k);
    await recoverFrom(root, seg, { offset: p.lastStart, bytes: p.buf.subarray(p.lastStart, p.lastStart + k) });
    await fs.promises.rm(root, { recursive: true });
  }
});

test('a last record with a bad checksum, or trailing zeros, is torn too', async () => {
  const p = await pristine();
  for (const mangle of ['flip', 'zeros'] as const) {
    const root = await tempDir('torn-case');
    await copyDir(p.root, root);
    const seg = join(root, 'journal', segmentName(1));
    let bytes: Buffer;
    if (mangle === 'flip') {
      bytes = Buffer.from(p.buf.subarray(p.lastStart));
      bytes[10] ^= 0x20;
      await fs.promises.writeFile(seg, Buffer.concat([p.buf.subarray(0, p.lastStart), bytes]));
    } else {
      // A crash can leave allocated but unwritten blocks (or a preallocated segment's filler):
      // zeros after the torn record. They hold nothing, so only the record's bytes are kept.
      bytes = p.buf.subarray(p.lastStart, p.lastStart + 20);
      await fs.promises.writeFile(seg, Buffer.concat([p.buf.subarray(0, p.lastStart), bytes, Buffer.alloc(4096)]));
    }
    await recoverFrom(root, seg, { offset: p.lastStart, bytes });
  }
});

test('a second crash at the same place keeps both torn pieces', async () => {
  const p = await pristine();
  const seg = p.seg;
  await fs.promises.truncate(seg, p.lastStart + 3);
  const a = await openJournal({ dir: join(p.root, 'journal'), durable: true });
  await a.journal.close();
  await fs.promises.appendFile(seg, p.buf.subarray(p.lastStart, p.lastStart + 3));
  const b = await openJournal({ dir: join(p.root, 'journal'), durable: true });
  assert.is.not(a.repaired!.keptAt, b.repaired!.keptAt);
  assert.ok(fs.existsSync(a.repaired!.keptAt));
  assert.equal((await collect(b.journal.readAll())).length, 4);
  await b.journal.close();
});

test('a clean journal reports no repair', async () => {
  const p = await pristine();
  const opened = await openJournal({ dir: join(p.root, 'journal'), durable: true });
  assert.is(opened.repaired, null);
  assert.is(opened.tail.length, N);
  await opened.journal.close();
});

test.run();
