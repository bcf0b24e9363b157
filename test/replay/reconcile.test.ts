/**
 * `atelier replay reconcile --inventory FILE`: on each golden crash image, the inventory taken from
 * the image's backend by `atelier inventory --json`, replayed against a copy of the image's
 * journal, gives exactly the decisions (records, to the byte), backend calls and statuses a live
 * start makes on the same image; and it writes nothing: the replayed directory is byte for byte
 * the same afterwards, no temporary directory is left, the fixtures are never touched. Bad input
 * gets its error code and changes nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inventoryCommand } from '../../cli/inventory.ts';
import { readJournalImage } from '../../replay/image.ts';
import { createFakeBackend } from '../../backends/fake/index.ts';
import { defaultReplayStart, replayBackend, replayReconcileCommand, type ReplayReconcileResult } from '../../cli/replay/reconcile.ts';
import { backendImage, cli, command, copyImage, crashImages, errorCode, FIXTURES, liveReconcile, snapshot, tempDir, tempLeftovers } from './reconcile-support.ts';

const AT = '2027-01-01T00:00:00.000Z';
const IMAGES = crashImages();

/** The inventory of a crash image's backend, through `atelier inventory --json` on the fake's file (in a temporary state directory). */
async function inventoryFile(imageDir: string, into: string): Promise<string> {
  const stateDir = join(into, 'inv-state');
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(join(stateDir, 'fake-backend.json'), JSON.stringify(backendImage(imageDir)));
  const r = await command({ backend: 'fake', stateDir, runDir: join(into, 'inv-run'), json: true, owner: 'alice' }, inventoryCommand);
  assert.is(r.code, 0, r.out);
  const file = join(into, 'inventory.json');
  writeFileSync(file, r.out);
  return file;
}

type Replayed = ReplayReconcileResult & { ok: boolean };

/** `atelier replay reconcile --json` on `journal` with `inventory`, the clock from `AT` (`at: null`: the default clock). */
async function replay(journal: string, inventory: string, at: string | null = AT): Promise<Replayed> {
  const r = await command({ json: true }, (ctx) => replayReconcileCommand(ctx, { journal, inventory, ...(at === null ? {} : { at }) }));
  assert.is(r.code, 0, r.out);
  return JSON.parse(r.out) as Replayed;
}

const bare = (d: Record<string, unknown>): Record<string, unknown> => {
  const { journal: _j, text: _t, ...rest } = d;
  return rest;
};

test('the golden crash images are there to replay', () => {
  assert.ok(IMAGES.length >= 20, `${IMAGES.length} images`);
  for (const must of ['v2-crash-copy/image', 'v2-crash-exec/image', 'v2-crash-remove/image', 'v2-crash-run/image', 'v2-random-1', 'v2-torn-tail'])
    assert.ok(
      IMAGES.some((i) => i.name === must),
      must,
    );
});

const fixturesBefore = snapshot(FIXTURES);

for (const image of IMAGES) {
  test(`${image.name}: the replay decides what a live start decides, and writes nothing`, async () => {
    const tmp = tempDir('replay-reconcile');
    const leftovers = tempLeftovers();
    try {
      const file = await inventoryFile(image.dir, tmp);
      const journal = copyImage(image.dir);
      try {
        const before = snapshot(journal);
        const got = await replay(journal, file);
        assert.equal(snapshot(journal), before, 'the replayed directory is byte for byte the same');
        const live = await liveReconcile(image.dir, AT);
        assert.equal(
          got.decisions.filter((d) => d.journal === 'durable').map((d) => bare(d)),
          live.durable,
          'the durable journal records',
        );
        assert.equal(
          got.decisions.filter((d) => d.journal === 'volatile').map((d) => bare(d)),
          live.volatile,
          'the volatile journal records',
        );
        assert.ok(got.decisions.some((d) => d.type === 'engine.reconciled'), 'the pass ends in engine.reconciled');
        assert.equal(
          got.actions.map((a) => a.text),
          live.actions,
          'the backend calls',
        );
        assert.equal(Object.fromEntries(Object.entries(got.workshops).filter(([, w]) => w.after !== null).map(([k, w]) => [k, w.after])), live.workshops, 'the statuses after');
        for (const d of got.decisions) assert.type(d.text, 'string');
        for (const d of got.decisions.filter((x) => x.type === 'effect.observed')) assert.match(d.text, /\(row [^)]+\)/);
      } finally {
        rmSync(journal, { recursive: true, force: true });
      }
      assert.equal(tempLeftovers(), leftovers, 'the temporary copy is removed');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

test('the fixtures themselves were never written', () => {
  assert.equal(snapshot(FIXTURES), fixturesBefore);
});

test('a torn tail: reconciliation after cutting it, in the copy only', async () => {
  const tmp = tempDir('replay-torn');
  const img = join(FIXTURES, 'v2-crash-copy', 'image');
  try {
    const file = await inventoryFile(img, tmp);
    const journal = copyImage(img);
    try {
      const dir = join(journal, 'state', 'journal');
      const seg = join(dir, readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort().at(-1)!);
      appendFileSync(seg, '{"seq":999,"v":1,"ty');
      const before = snapshot(journal);
      const got = await replay(journal, file);
      assert.is((got as unknown as { torn: { kind: string } }).torn.kind, 'torn');
      assert.equal(snapshot(journal), before, 'the torn tail is still there');
      const untorn = await replay(join(img), file);
      assert.equal(got.decisions, untorn.decisions, 'the same decisions as without the torn piece');
    } finally {
      rmSync(journal, { recursive: true, force: true });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('without --at the clock starts just after the journal\'s last record, and the human output says what would happen', async () => {
  const tmp = tempDir('replay-text');
  const img = join(FIXTURES, 'v2-crash-exec', 'image');
  try {
    const file = await inventoryFile(img, tmp);
    const got = await replay(img, file, null);
    assert.is(got.at, defaultReplayStart(await readJournalImage(img)));
    assert.ok(Date.parse(got.at) > Date.parse('2026-12-05T12:00:00.000Z'));
    const text = await command({}, (ctx) => replayReconcileCommand(ctx, { journal: img, inventory: file }));
    assert.is(text.code, 0, text.err);
    assert.match(text.out, /probed \{"present":true\} -> \S+ \(row exec\)/);
    assert.match(text.out, /would ask the backend to:/);
    assert.match(text.out, /nav2: busy -> ready/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('through the command line: atelier replay --journal DIR reconcile --inventory FILE --json', async () => {
  const tmp = tempDir('replay-cli');
  const img = join(FIXTURES, 'v2-crash-remove', 'image');
  try {
    const file = await inventoryFile(img, tmp);
    const journal = copyImage(img);
    try {
      const before = snapshot(journal);
      const r = await cli(['--json', '--state-dir', join(tmp, 'nowhere'), 'replay', '--journal', journal, 'reconcile', '--inventory', file]);
      assert.is(r.code, 0, r.out);
      const got = JSON.parse(r.out) as Replayed;
      assert.is(got.ok, true);
      assert.ok(got.decisions.some((d) => d.type === 'effect.observed'));
      assert.equal(snapshot(journal), before);
      assert.equal(snapshot(join(tmp, 'nowhere')).size, 0, 'the state directory was not created');
    } finally {
      rmSync(journal, { recursive: true, force: true });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('bad input gets a clear error code and changes nothing', async () => {
  const tmp = tempDir('replay-bad');
  const img = join(FIXTURES, 'v2-crash-exec', 'image');
  const journal = copyImage(img);
  const leftovers = tempLeftovers();
  try {
    const good = await inventoryFile(img, tmp);
    const before = snapshot(journal);
    const inv = JSON.parse(readFileSync(good, 'utf8')) as Record<string, any>;
    const write = (name: string, content: string): string => {
      const f = join(tmp, name);
      writeFileSync(f, content);
      return f;
    };
    const cases: [string, string, { journal?: string; at?: string }?][] = [
      ['NOT_FOUND', join(tmp, 'no-such-file.json')],
      ['INVALID_ARGUMENT', tmp], // a directory
      ['INVALID_ARGUMENT', write('not-json.json', '{"atelier": "0.1.0", "kind": "atelier-inv')],
      ['INVALID_ARGUMENT', write('error.json', JSON.stringify({ ok: false, error: { code: 'UNAVAILABLE', message: 'down', exitCode: 5 } }))],
      ['INVALID_ARGUMENT', write('other-kind.json', JSON.stringify({ ...inv, kind: 'something-else' }))],
      ['INVALID_ARGUMENT', write('no-objects.json', JSON.stringify({ ...inv, objects: undefined }))],
      ['INVALID_ARGUMENT', write('bob.json', JSON.stringify({ ...inv, owner: 'bob', objects: [] }))],
      ['INVALID_ARGUMENT', write('foreign-object.json', JSON.stringify({ ...inv, objects: [{ ...inv.objects[0], tags: { ...inv.objects[0].tags, owner: 'bob' } }] }))],
      ['INVALID_ARGUMENT', write('bad-status.json', JSON.stringify({ ...inv, objects: [{ ...inv.objects[0], status: 'flying' }] }))],
      ['INVALID_ARGUMENT', write('twice.json', JSON.stringify({ ...inv, objects: [inv.objects[0], inv.objects[0]] }))],
      ['INVALID_ARGUMENT', good, { at: 'yesterday' }],
      ['NOT_FOUND', good, { journal: join(tmp, 'no-journal-here') }],
    ];
    for (const [code, file, more] of cases) {
      const r = await command({ json: true }, (ctx) => replayReconcileCommand(ctx, { journal: journal, inventory: file, ...more }));
      assert.is(errorCode(r), code, `${file} ${JSON.stringify(more ?? {})}: ${r.out}`);
      assert.is(r.code, 2);
      assert.equal(snapshot(journal), before, `${file}: nothing changed`);
    }
    assert.equal(tempLeftovers(), leftovers, 'no temporary copy left behind');
  } finally {
    rmSync(journal, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a corrupt journal is refused as a start would refuse it', async () => {
  const tmp = tempDir('replay-corrupt');
  const img = join(FIXTURES, 'v2-crash-exec', 'image');
  const journal = copyImage(img);
  try {
    const file = await inventoryFile(img, tmp);
    const dir = join(journal, 'state', 'journal');
    const seg = join(dir, readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort()[0]!);
    const text = readFileSync(seg, 'utf8').split('\n');
    text[3] = text[3]!.replace('"op-', '"oq-'); // a bad CRC in the middle: corrupt, not torn
    writeFileSync(seg, text.join('\n'));
    const before = snapshot(journal);
    const r = await command({ json: true }, (ctx) => replayReconcileCommand(ctx, { journal, inventory: file }));
    assert.is(errorCode(r), 'JOURNAL_CORRUPT', r.out);
    assert.is(r.code, 4);
    assert.equal(snapshot(journal), before);
  } finally {
    rmSync(journal, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
});

/**
 * A random walk's end state, with objects lost and left behind since: an SDK layer gone (missing),
 * an owned layer and a transient container from it nobody accounts for (orphans, the container
 * first), an object without an owner (never touched).
 */
function perturbed(caseDir: string, into: string): string {
  const dir = join(into, 'image');
  cpSync(join(caseDir, 'state'), join(dir, 'state'), { recursive: true });
  if (existsSync(join(caseDir, 'run'))) cpSync(join(caseDir, 'run'), join(dir, 'run'), { recursive: true });
  const img = backendImage(caseDir);
  const lost = img.objects.findIndex((o) => o.tags.kind === 'sdk');
  if (lost >= 0) img.objects.splice(lost, 1);
  const id = { mac: '00:16:3e:00:00:01', uuid: '00000000-0000-4000-8000-000000000001' };
  img.objects.push(
    { space: 'layers', name: 'left-0000000000000abc', tags: { owner: 'alice', op: 'op-gone', kind: 'sdk', workshop: 'nav2', sdk: 'left' }, status: 'stopped', identity: id, base: 'busybox', files: {} },
    { space: 'workshops', name: 'run-left', tags: { owner: 'alice', op: 'op-gone2', kind: 'container', source: 'left-0000000000000abc' }, status: 'running', identity: { ...id, mac: '00:16:3e:00:00:02' }, base: 'busybox', from: { space: 'layers', name: 'left-0000000000000abc' }, files: {} },
    { space: 'workshops', name: 'someone-elses', tags: { kind: 'workshop' }, status: 'running', identity: { ...id, mac: '00:16:3e:00:00:03' }, base: 'busybox', files: {} },
  );
  img.objects.sort((a, b) => (a.space === b.space ? (a.name < b.name ? -1 : 1) : a.space < b.space ? -1 : 1));
  writeFileSync(join(dir, 'backend.json'), JSON.stringify(img));
  return dir;
}

for (const c of ['v2-random-1', 'v2-random-2', 'v2-random-4', 'random-2']) {
  test(`${c}, with objects lost and left behind: the replay decides what a live start decides`, async () => {
    const tmp = tempDir('replay-random');
    try {
      const image = perturbed(join(FIXTURES, c), tmp);
      const file = await inventoryFile(image, tmp);
      const before = snapshot(image);
      const got = await replay(image, file);
      assert.equal(snapshot(image), before);
      const live = await liveReconcile(image, AT);
      assert.equal(
        got.decisions.filter((d) => d.journal === 'durable').map((d) => bare(d)),
        live.durable,
      );
      assert.equal(
        got.decisions.filter((d) => d.journal === 'volatile').map((d) => bare(d)),
        live.volatile,
      );
      assert.equal(
        got.actions.map((a) => a.text),
        live.actions,
      );
      assert.ok(got.report.orphans >= 1 && got.report.missing >= 1, JSON.stringify(got.report));
      assert.ok(got.decisions.some((d) => d.type === 'object.missing'));
      assert.ok(got.actions.findIndex((a) => a.text === 'remove workshops/run-left') < got.actions.findIndex((a) => a.text === 'remove layers/left-0000000000000abc'), 'the container before its source');
      assert.not.ok(got.actions.some((a) => a.text.includes('someone-elses')), 'an object without an owner is never touched');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

test('a hook the replay would run is not run: assumed to succeed when the port allows it, and marked', async () => {
  const img = join(FIXTURES, 'v2-crash-exec', 'image');
  const fake = createFakeBackend();
  fake.load(backendImage(img));
  const objects = await fake.list('alice');
  const backend = replayBackend(await readJournalImage(img), { atelier: '0.1.0', kind: 'atelier-inventory', backend: 'overlay', owner: 'alice', at: '', objects });
  assert.is(backend.kind, 'overlay');
  const ws = objects.find((o) => o.tags.kind === 'workshop')!.ref;
  const layer = objects.find((o) => o.tags.kind === 'sdk')!.ref;
  assert.equal(await backend.exec(ws, { script: 'exit 3' }), { exitCode: 0, stdout: '', stderr: '' });
  await backend.stop(ws);
  assert.is(await backend.exec(ws, { script: 'true' }).catch((e: { code: string }) => e.code), 'INVALID');
  assert.is(await backend.exec(layer, { script: 'true' }).catch((e: { code: string }) => e.code), 'INVALID');
  assert.is(await backend.exec({ space: 'workshops', name: 'nope' }, { script: 'true' }).catch((e: { code: string }) => e.code), 'NOT_FOUND');
  assert.equal(
    backend.actions.map((a) => [a.text, a.ok, a.assumed ?? false]),
    [
      [`exec ${ws.space}/${ws.name}`, true, true],
      [`stop ${ws.space}/${ws.name}`, true, false],
      [`exec ${ws.space}/${ws.name}`, false, false],
      [`exec ${layer.space}/${layer.name}`, false, false],
      ['exec workshops/nope', false, false],
    ],
  );
});

test.run();
