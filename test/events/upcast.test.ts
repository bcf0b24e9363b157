/**
 * Records of an older schema version are upcast when folded (with the state they fold into); a
 * record of a newer version is a JOURNAL_VERSION error telling the user to upgrade, as soon as it
 * is read.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { join } from 'node:path';
import { openJournal } from '../../events/journal.ts';
import { encodeRecord } from '../../events/record.ts';
import { segmentName } from '../../events/segments.ts';
import { createUpcasters, foldRecord, upcastRecord, upcastState } from '../../events/upcast.ts';
import { initialState, STATE_SCHEMA } from '../../machines/index.ts';
import { collect, rejection, started, tempDir } from './helpers.ts';

// An imaginary v0 of op.finished said `ok: boolean` where v1 said `outcome` (and v2 adds the rest).
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

test('an older record is read as stored, and upcast when folded', async () => {
  const dir = await journalWith(v0);
  const opened = await openJournal({ dir, durable: false });
  const rec = opened.tail[1]!;
  assert.is(rec.v, 0, 'the journal hands the record over as stored');
  assert.equal((await collect(opened.journal.readAll(2)))[0], rec);
  const up = upcastRecord(rec, initialState(), upcasters, undefined, { 'op.finished': 1 });
  assert.is(up.v, 1);
  assert.equal(up.data, { op: 'op-1', at: 'T', outcome: 'done' });
  await opened.journal.close();
});

test('an older record without an upcaster is JOURNAL_VERSION when folded', async () => {
  const dir = await journalWith(v0);
  const opened = await openJournal({ dir, durable: false });
  const err = (() => {
    try {
      foldRecord(initialState(), opened.tail[1]!);
    } catch (e) {
      return e as { code: string; info: Record<string, unknown> };
    }
    return null;
  })();
  await opened.journal.close();
  assert.is(err?.code, 'JOURNAL_VERSION');
  assert.is(err?.info.seq, 2);
});

test('a record from a newer atelier is JOURNAL_VERSION, not a crash', async () => {
  const dir = await journalWith((seq) => encodeRecord({ seq, v: 2, type: 'container.started', key: 'c2', data: { id: 'c2', at: 'T', cpu: 4 } }));
  const err = await rejection(openJournal({ dir, durable: false }));
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
  const out = upcastRecord({ seq: 1, v: 1, type: 'x', key: 'k', data: { a: 1 } } as any, initialState(), table, undefined, { x: 3 });
  assert.equal(out.data, { a: 1, b: 2, c: 20 });
  assert.is(out.v, 3);
  assert.throws(() => createUpcasters([{ type: 'x', from: 1, up: (d) => d }, { type: 'x', from: 1, up: (d) => d }]));
});

test('an upcaster reads the state the record folds into', () => {
  const table = createUpcasters([{ type: 'x', from: 1, up: (d, s) => ({ ...d, workshops: Object.keys(s.workshops).length, seq: s.seq }) }]);
  const s = { ...initialState(), seq: 41 };
  const out = upcastRecord({ seq: 42, v: 1, type: 'x', key: 'k', data: {} } as any, s, table, undefined, { x: 2 });
  assert.equal(out.data, { workshops: 0, seq: 41 });
});

test('a version-1 op.phase entering undo is upcast with the undo steps its op implies', () => {
  const s = initialState();
  const target = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
  const plan = {
    do: [
      { label: 'stop', effect: { type: 'stop', target }, undo: [{ label: 'start', effect: { type: 'start', target } }] },
      { label: 'start', effect: { type: 'start', target } },
    ],
    cleanup: [],
    before: null,
    after: null,
  };
  s.ops['op-1'] = { id: 'op-1', kind: 'stash', plan, workshop: 'nav2', startedAt: 'T', phase: 'do', step: 1, attempt: 1, undo: null, failure: null, pending: false } as any;
  const out = upcastRecord({ seq: 9, v: 1, type: 'op.phase', key: 'nav2', data: { op: 'op-1', phase: 'undo', from: 1, reason: 'rollback', at: 'T' } } as any, s);
  assert.is(out.v, 2);
  assert.equal((out.data as any).steps.map((x: { label: string }) => x.label), ['start']);
});

test('a schema-1 checkpoint state is brought to the current schema: an op in undo gets its undo steps', () => {
  const target = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;
  const plan = {
    do: [
      { label: 'stop', effect: { type: 'stop', target }, undo: [{ label: 'start', effect: { type: 'start', target } }] },
      { label: 'start', effect: { type: 'start', target } },
    ],
    cleanup: [],
    before: null,
    after: null,
  };
  const v1 = { seq: 7, workshops: {}, objects: {}, ops: { 'op-1': { id: 'op-1', kind: 'stash', plan, workshop: 'nav2', startedAt: 'T', phase: 'undo', step: 0, attempt: 1, undoFrom: 1, failure: null, pending: true } } };
  const s = upcastState(v1);
  assert.is(s.schema, STATE_SCHEMA);
  assert.is(s.seq, 7);
  assert.equal(s.ops['op-1']!.undo!.map((x) => x.label), ['start']);
  assert.not.ok('undoFrom' in s.ops['op-1']!);
  assert.is(upcastState(s), s, 'a current state is taken as it is');
  assert.throws(() => upcastState({ ...s, schema: STATE_SCHEMA + 1 }), (e: { code: string }) => e.code === 'JOURNAL_VERSION');
});

test.run();
