import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, mkdir, writeFile, cp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AtelierError } from '../../machines/errors.ts';
import { loadWorkshopFile, projectIdFor, sdkHash } from '../../engine/workshop-file.ts';

const root = path.resolve(import.meta.dirname, '../..');
const quick = path.join(root, 'fixtures/quickstart');
const bad = path.join(root, 'fixtures/bad');
const opts = { defaultBase: 'default-base' };

async function rejects(p: Promise<unknown>, code: string, ...mentions: string[]): Promise<AtelierError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, AtelierError);
    const err = e as AtelierError;
    assert.is(err.code, code, err.message);
    for (const m of mentions) assert.ok(err.message.includes(m), `message ${JSON.stringify(err.message)} should name ${m}`);
    return err;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

test('quickstart: name, default base, project id, two SDKs with chained hashes', async () => {
  const spec = await loadWorkshopFile(path.join(quick, 'workshop.yaml'), opts);
  assert.is(spec.name, 'quickstart');
  assert.is(spec.base, 'default-base');
  assert.is(spec.defaultBase, true);
  assert.match(spec.projectId, /^[0-9a-f]{8}$/);
  assert.is(spec.projectId, projectIdFor(quick));
  assert.equal(spec.sdks.map((s) => s.name), ['ros2', 'nav2']);
  for (const s of spec.sdks) assert.match(s.hash, /^[0-9a-f]{16}$/);
  assert.ok(spec.sdks[0].script.includes('ATELIER_ROOTFS'));
  assert.is(spec.sdks[0].hash, sdkHash('ros2', Buffer.from(spec.sdks[0].script), null));
  assert.is(spec.sdks[1].hash, sdkHash('nav2', Buffer.from(spec.sdks[1].script), spec.sdks[0].hash));
});

test('a directory is read as its workshop.yaml; a relative path gives the same project id', async () => {
  const a = await loadWorkshopFile(quick, opts);
  const b = await loadWorkshopFile(path.relative(process.cwd(), path.join(quick, 'workshop.yaml')), opts);
  assert.equal(a, b);
});

test('v2: the first SDK keeps its hash, the changed last one does not', async () => {
  const v1 = await loadWorkshopFile(path.join(quick, 'workshop.yaml'), opts);
  const v2 = await loadWorkshopFile(path.join(quick, 'workshop-v2.yaml'), opts);
  assert.is(v2.name, v1.name);
  assert.is(v2.projectId, v1.projectId);
  assert.is(v2.sdks[0].hash, v1.sdks[0].hash);
  assert.is.not(v2.sdks[1].hash, v1.sdks[1].hash);
});

test('changing an SDK invalidates it and everything after it, never before', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'atelier-wf-'));
  try {
    await cp(quick, dir, { recursive: true });
    const before = await loadWorkshopFile(path.join(dir, 'workshop.yaml'), opts);
    await writeFile(path.join(dir, '.workshop/ros2/hooks/setup-base'), 'echo changed > "${ATELIER_ROOTFS%/}/x"\n');
    const after = await loadWorkshopFile(path.join(dir, 'workshop.yaml'), opts);
    assert.is.not(after.sdks[0].hash, before.sdks[0].hash);
    assert.is.not(after.sdks[1].hash, before.sdks[1].hash);
    assert.is(after.sdks[1].script, before.sdks[1].script);
    assert.is.not(after.projectId, projectIdFor(quick));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('explicit base, sdk.yaml optional, empty sdks', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'atelier-wf-'));
  try {
    await writeFile(path.join(dir, 'workshop.yaml'), 'name: plain\nbase: ubuntu@24.04\nsdks: []\n');
    const spec = await loadWorkshopFile(path.join(dir, 'workshop.yaml'), opts);
    assert.is(spec.base, 'ubuntu@24.04');
    assert.is(spec.defaultBase, false);
    assert.equal(spec.sdks, []);
    await mkdir(path.join(dir, '.workshop/tool/hooks'), { recursive: true });
    await writeFile(path.join(dir, '.workshop/tool/hooks/setup-base'), 'touch "${ATELIER_ROOTFS%/}/t"\n');
    await writeFile(path.join(dir, '.workshop/tool/sdk.yaml'), 'name: other\n');
    await writeFile(path.join(dir, 'workshop.yaml'), 'name: plain\nsdks:\n  - name: tool\n');
    await rejects(loadWorkshopFile(path.join(dir, 'workshop.yaml'), opts), 'INVALID_SPEC', 'sdk.yaml', 'tool');
    await writeFile(path.join(dir, '.workshop/tool/sdk.yaml'), 'name: tool\ndescription: ok\n');
    assert.is((await loadWorkshopFile(path.join(dir, 'workshop.yaml'), opts)).sdks.length, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const cases: [file: string, code: string, mentions: string[]][] = [
  ['missing.yaml', 'INVALID_SPEC', ['missing.yaml', 'not found']],
  ['empty.yaml', 'INVALID_SPEC', ['empty.yaml', 'empty']],
  ['comments-only.yaml', 'INVALID_SPEC', ['comments-only.yaml', 'empty']],
  ['malformed.yaml', 'INVALID_SPEC', ['malformed.yaml', 'line']],
  ['unknown-sdk.yaml', 'INVALID_SPEC', ['unknown-sdk.yaml', '"ros3"', 'did you mean "ros2"?']],
  ['bad-name.yaml', 'INVALID_NAME', ['bad-name.yaml', 'name', '"Nav2"']],
  ['long-name.yaml', 'INVALID_NAME', ['long-name.yaml', '41', '40']],
  ['bad-sdk-name.yaml', 'INVALID_NAME', ['bad-sdk-name.yaml', 'sdks[0].name', '"a..b"']],
  ['reserved-sdk.yaml', 'INVALID_NAME', ['"try-this"', 'reserved']],
  ['duplicate-sdk.yaml', 'INVALID_SPEC', ['"ros2"', 'twice']],
  ['wrong-types.yaml', 'INVALID_SPEC', ['"sdks"', 'list']],
  ['unknown-field.yaml', 'INVALID_SPEC', ['"bases"', 'did you mean "base"?']],
  ['not-a-mapping.yaml', 'INVALID_SPEC', ['mapping']],
  ['no-hook/workshop.yaml', 'INVALID_SPEC', ['"ghost"', 'setup-base']],
];
for (const [file, code, mentions] of cases) {
  test(`bad input: ${file} → ${code}`, async () => {
    await rejects(loadWorkshopFile(path.join(bad, file), opts), code, ...mentions);
  });
}

test('bad input: wrong types of name, base and SDK entries', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'atelier-wf-'));
  try {
    const f = path.join(dir, 'workshop.yaml');
    for (const [text, mention] of [
      ['name: 12\n', '"name"'],
      ['sdks: []\n', '"name"'],
      ['name: a\nbase: [x]\n', '"base"'],
      ['name: a\nbase: "two words"\n', '"base"'],
      ['name: a\nsdks:\n  - ros2\n', 'sdks[0]'],
      ['name: a\nsdks:\n  - name: 7\n', 'sdks[0].name'],
      ['name: a\nsdks:\n  - name: ros2\n    version: 1\n', '"version"'],
      ['name: a\nname: b\n', 'line'],
    ] as const) {
      await writeFile(f, text);
      await rejects(loadWorkshopFile(f, opts), 'INVALID_SPEC', mention);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
