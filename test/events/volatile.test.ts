/**
 * The volatile journal (transient containers, in the run directory) is written without fsync and
 * starts empty when a reboot took its directory away.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { join } from 'node:path';
import { openJournal } from '../../events/journal.ts';
import { started, tempDir } from './helpers.ts';

const real = { fdatasync: fs.fdatasync, fsync: fs.fsync };

test.after.each(() => {
  Object.assign(fs as any, real);
});

test('a volatile journal never fsyncs', async () => {
  const run = await tempDir('volatile');
  let syncs = 0;
  (fs as any).fdatasync = (fd: number, cb: any) => { syncs++; real.fdatasync(fd, cb); };
  (fs as any).fsync = (fd: number, cb: any) => { syncs++; real.fsync(fd, cb); };
  const { journal, tail, checkpoint } = await openJournal({ dir: join(run, 'journal'), durable: false });
  assert.equal(tail, []);
  assert.is(checkpoint, null);
  await Promise.all(Array.from({ length: 20 }, (_, i) => journal.append([started(`t${i}`)])));
  await journal.writeCheckpoint(20, { any: 'thing' }); // no checkpoint directory: a no-op
  await journal.close();
  assert.is(syncs, 0);
  assert.equal(await fs.promises.readdir(run), ['journal']);
  const again = await openJournal({ dir: join(run, 'journal'), durable: false });
  assert.is(again.tail.length, 20);
  await again.journal.close();
});

test('a volatile journal whose directory is gone (reboot) starts empty', async () => {
  const run = await tempDir('volatile-reboot');
  const dir = join(run, 'atelier', 'journal');
  const first = await openJournal({ dir, durable: false });
  await first.journal.append([started('c1'), started('c2')]);
  await first.journal.close();
  await fs.promises.rm(join(run, 'atelier'), { recursive: true });
  const after = await openJournal({ dir, durable: false });
  assert.equal(after.tail, []);
  assert.is(after.repaired, null);
  assert.is(after.journal.lastSeq, 0);
  const [r] = await after.journal.append([started('c3')]);
  assert.is(r.seq, 1);
  await after.journal.close();
  assert.ok(fs.existsSync(dir));
});

test.run();
