/**
 * The journal on a full disk, on a real one (a tmpfs with `size=`): an append that does not fit is
 * refused with `NO_SPACE`, leaves nothing of itself on disk and gives its seqs back, and the journal
 * goes on; allowed to, it rolls into its reserve and the records reach disk; a checkpoint that does
 * not fit leaves no temp file. Reopened, the journal holds exactly what was acknowledged.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { join } from 'node:path';
import type { JournalRecord } from '../../events/catalogue.ts';
import { openJournal } from '../../events/journal.ts';
import { RESERVE_BYTES, RESERVE_NAME } from '../../events/reserve.ts';
import { mountSmallFs, smallFsBlocker, smallFsUnavailable, type SmallFs } from '../support/small-fs.ts';
import { rejection, started } from './helpers.ts';

const blocker = smallFsBlocker();
let fsys: SmallFs | null = null;

test.after.each(async () => {
  await fsys?.unmount();
  fsys = null;
});

/** Append one record at a time until one is refused; returns the acknowledged seqs and the refusal. */
async function appendUntilFull(journal: Awaited<ReturnType<typeof openJournal>>['journal'], label: string): Promise<{ acked: number[]; refusal: any }> {
  const acked: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    try {
      const [r] = await journal.append([started(`${label}${i}`)]);
      acked.push(r!.seq);
    } catch (e) {
      return { acked, refusal: e };
    }
  }
  throw new Error('the disk never filled');
}

async function reread(dir: string): Promise<JournalRecord[]> {
  const { journal, tail } = await openJournal({ dir, durable: true, reserveBytes: 0 });
  await journal.close();
  return tail;
}

if (blocker) {
  smallFsUnavailable(test, 'journal on a full disk', blocker);
} else {
  test('an append that does not fit is refused with NO_SPACE, nothing of it stays, and the journal goes on', async () => {
    fsys = await mountSmallFs('journal', 4 << 20);
    const dir = join(fsys.dir, 'journal');
    const { journal } = await openJournal({ dir, durable: true, segmentBytes: 64 * 1024 });
    assert.is(journal.reserveBytes, RESERVE_BYTES, 'the reserve is written when the journal opens');
    await journal.append([started('before')]);
    fsys.fill();
    // The last page's slack may take a few more records; then the disk is full.
    const { acked, refusal } = await appendUntilFull(journal, 'c');
    assert.is(refusal.code, 'NO_SPACE');
    assert.is(refusal.info.disk, 'journal');
    const last = journal.lastSeq;
    assert.is(last, 1 + acked.length);
    // Refused again, and again nothing moves.
    assert.is((await rejection(journal.append([started('again')]))).code, 'NO_SPACE');
    assert.is(journal.lastSeq, last);
    // Allowed to, the journal spends its reserve: the next seq is the one refused, no gap.
    journal.allowReserve(true);
    const [r] = await journal.append([started('from-reserve')]);
    assert.is(r!.seq, last + 1);
    assert.is(journal.reserveBytes, 0, 'the reserve is spent');
    assert.not.ok(fs.existsSync(join(dir, RESERVE_NAME)));
    const more = await journal.append([started('a'), started('b')]);
    assert.equal(more.map((x) => x.seq), [last + 2, last + 3]);
    // A checkpoint does not fit: it fails, and leaves no temp file.
    const cp = await rejection(journal.writeCheckpoint(journal.lastSeq, { big: 'x'.repeat(256 * 1024) }));
    assert.is(cp.code, 'ENOSPC');
    assert.equal(fs.readdirSync(join(fsys.dir, 'checkpoints')).filter((n) => n.endsWith('.tmp')), []);
    await journal.close();
    // Everything acknowledged, in order, and nothing else.
    const records = await reread(dir);
    assert.equal(records.map((x) => x.seq), Array.from({ length: last + 3 }, (_, i) => i + 1));
    assert.equal(records.at(-1)!.key, 'b');
    assert.ok(records.every((x) => x.key !== 'again'));
  });

  test('the spent reserve is written again once there is room, and not before', async () => {
    fsys = await mountSmallFs('journal', 4 << 20);
    const dir = join(fsys.dir, 'journal');
    const { journal } = await openJournal({ dir, durable: true, segmentBytes: 64 * 1024 });
    fsys.fill();
    await appendUntilFull(journal, 'c');
    journal.allowReserve(true);
    await journal.append([started('spend')]);
    assert.is(await journal.refillReserve(), false, 'no room: not written');
    assert.equal(fs.readdirSync(dir).filter((n) => n.includes('prealloc')), [], 'and no partial reserve left');
    fsys.unfill();
    assert.is(await journal.refillReserve(), true);
    assert.is(fs.statSync(join(dir, RESERVE_NAME)).size, RESERVE_BYTES);
    journal.allowReserve(false);
    await journal.append([started('after')]);
    await journal.close();
    const records = await reread(dir);
    assert.is(records.at(-1)!.key, 'after');
    assert.equal(records.map((x) => x.seq), Array.from({ length: records.length }, (_, i) => i + 1));
  });

  test('a journal opened on a full disk opens without a reserve, and leaves no partial one', async () => {
    fsys = await mountSmallFs('journal', 4 << 20);
    const dir = join(fsys.dir, 'journal');
    fs.mkdirSync(dir);
    fsys.fill();
    const { journal } = await openJournal({ dir, durable: true });
    assert.is(journal.reserveBytes, 0);
    assert.equal(fs.readdirSync(dir), []);
    assert.is((await rejection(journal.append([started('x')]))).code, 'NO_SPACE');
    await journal.close();
    assert.equal(fs.readdirSync(dir), [], 'the refused batch left no empty segment');
  });
}

test.run();
