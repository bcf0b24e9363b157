/**
 * Records of an older schema version are upcast when read; a record of a newer version is a
 * JOURNAL_VERSION error telling the user to upgrade.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { join } from 'node:path';
import { openJournal } from '../../events/journal.ts';
import { encodeRecord } from '../../events/record.ts';
import { segmentName } from '../../events/segments.ts';
import { createUpcasters, upcastRecord } from '../../events/upcast.ts';
import { collect, rejection, started, tempDir } from './helpers.ts';

// An imaginary v0 of op.finished said `ok: boolean` where v1 says `outcome`.
const upcasters = createUpcasters([
  { type: 'op.finished', from: 0, up: ({ ok, ...rest }) => ({ ...rest, outcome: ok ? 'done' : 'broken' }) },
]);

async function journalWith(extra: (seq: number) => string): Promise<string> {
  const root = await tempDir('upcast');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: false });
  await journal.append([started('c1')]);
  await journal.close();
  await fs.promises.appendFile(join(dir, segmentName(1)), extra(2));
  return dir;
}

const v0 = (seq: number) => encodeRecord({ seq, v: 0, type: 'op.finished', key: 'nav2', data: { op: 'op-1', ok: true, at: 'T' } });

test('a v0 record is upcast on open and by readAll', async () => {
  const dir = await journalWith(v0);
  const opened = await openJournal({ dir, durable: false, upcasters });
  const rec = opened.tail[1];
  assert.is(rec.v, 1);
  assert.equal(rec.data, { op: 'op-1', at: 'T', outcome: 'done' });
  assert.equal((await collect(opened.journal.readAll(2)))[0], rec);
  // New records are written at the current version, after the upcast one.
  const [next] = await opened.journal.append([{ type: 'op.finished', key: 'nav2', data: { op: 'op-2', outcome: 'undone', at: 'T' } }]);
  assert.equal([next.seq, next.v], [3, 1]);
  await opened.journal.close();
});

test('an older record without an upcaster is JOURNAL_VERSION', async () => {
  const dir = await journalWith(v0);
  const err = await rejection(openJournal({ dir, durable: false }));
  assert.is(err.code, 'JOURNAL_VERSION');
  assert.is(err.info.seq, 2);
});

test('a record from a newer atelier is JOURNAL_VERSION, not a crash', async () => {
  const dir = await journalWith((seq) => encodeRecord({ seq, v: 2, type: 'container.started', key: 'c2', data: { id: 'c2', at: 'T', cpu: 4 } }));
  const err = await rejection(openJournal({ dir, durable: false, upcasters }));
  assert.is(err.code, 'JOURNAL_VERSION');
  assert.equal([err.info.seq, err.info.v, err.info.current, err.info.type], [2, 2, 1, 'container.started']);
  assert.match(err.message, /upgrade atelier/);
});

test('an event type this atelier does not know is JOURNAL_VERSION', async () => {
  const dir = await journalWith((seq) => encodeRecord({ seq, v: 1, type: 'workshop.teleported', key: 'w', data: {} }));
  const err = await rejection(openJournal({ dir, durable: false }));
  assert.is(err.code, 'JOURNAL_VERSION');
  assert.is(err.info.type, 'workshop.teleported');
});

test('upcasters chain one version at a time', () => {
  const table = createUpcasters([
    { type: 'x', from: 1, up: (d) => ({ ...d, b: d.a + 1 }) },
    { type: 'x', from: 2, up: (d) => ({ ...d, c: d.b * 10 }) },
  ]);
  const out = upcastRecord({ seq: 1, v: 1, type: 'x', key: 'k', data: { a: 1 } } as any, table, undefined, { x: 3 });
  assert.equal(out.data, { a: 1, b: 2, c: 20 });
  assert.is(out.v, 3);
  assert.throws(() => createUpcasters([{ type: 'x', from: 1, up: (d) => d }, { type: 'x', from: 1, up: (d) => d }]));
});

test.run();
