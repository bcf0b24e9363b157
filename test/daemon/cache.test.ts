/**
 * atelierd and the SDK cache: `POST /v1/gc` with `cache` evicts every cached SDK layer (`dry-run`
 * lists them), the CLI's `gc --cache` through the daemon, a malformed body refused with the API's
 * error shape and nothing written, and `atelierd --cache-keep` (and `ATELIER_CACHE_KEEP`): a bad
 * value stops it at once with exit 2, a good one reaches its engine. A real daemon process on a
 * real unix socket, on the fake backend.
 *
 * Cache entries are made as a client makes them: two workshops with the same SDK (inline specs,
 * two projects) share its layer; once both are removed nobody holds it and it stays cached.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daemon, request, ROOT, spawnDaemon, treeDigest, waitChange, type Daemon } from './helpers.ts';
import { eventually } from '../backends/overlay-runtime-env.ts';

const SDKS = [
  { name: 'tools', 'setup-base': 'echo tools > "${ATELIER_ROOTFS%/}/etc/tools"' },
  { name: 'lint', 'setup-base': 'echo lint > "${ATELIER_ROOTFS%/}/etc/lint"' },
];

async function change(d: Daemon, path: string, body?: unknown): Promise<any> {
  const r = await request(d.socket, 'POST', path, body);
  assert.is(r.status, 202, `${path}: ${r.text}`);
  const c = await waitChange(d.socket, r.body.change);
  assert.is(c.status, 'Done', `${path}: ${JSON.stringify(c)}`);
  return c;
}

/** Launch `one` and `two` (the same SDKs, two projects), remove both: their shared layers' names. */
async function cacheEntries(d: Daemon): Promise<string[]> {
  for (const name of ['one', 'two']) await change(d, '/v1/workshops', { action: 'launch', spec: { name, project: `/srv/${name}`, sdks: SDKS } });
  const one = (await request(d.socket, 'GET', '/v1/workshops/one')).body.result;
  const two = (await request(d.socket, 'GET', '/v1/workshops/two')).body.result;
  const layers = one.sdks.map((s: { layer: string }) => s.layer).sort();
  assert.is(layers.length, 2);
  assert.equal(two.sdks.map((s: { layer: string }) => s.layer).sort(), layers, 'the two workshops share their SDK layers');
  for (const name of ['one', 'two']) await change(d, `/v1/workshops/${name}`, { action: 'remove' });
  return layers;
}

/** The layers the backend holds, as `GET /v1/space` (atelier df) lists its objects. */
async function backendLayers(d: Daemon): Promise<string[]> {
  const r = await request(d.socket, 'GET', '/v1/space');
  assert.is(r.status, 200, r.text);
  return (r.body.result.objects as { ref: { space: string; name: string } }[])
    .filter((o) => o.ref.space === 'layers')
    .map((o) => o.ref.name)
    .sort();
}

const names = (refs: { space: string; name: string }[]): string[] => {
  assert.ok(refs.every((r) => r.space === 'layers'), JSON.stringify(refs));
  return refs.map((r) => r.name).sort();
};

function cli(d: Daemon, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin/atelier.js'), '--backend', 'fake', '--state-dir', d.stateDir, '--run-dir', d.runDir, '--socket', d.socket, ...args], { env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

test('POST /v1/gc {"cache":true}: dry-run lists the cached SDK layers and removes nothing; then they are evicted', async () => {
  const d = await daemon();
  try {
    const layers = await cacheEntries(d);
    assert.equal(await backendLayers(d), layers, 'nobody holds them, and the backend keeps them (cached)');

    // gc without cache: the cache entries are not garbage, and the report has no `evicted`.
    let c = await change(d, '/v1/gc', {});
    assert.equal(c.data, { orphans: [], 'dry-run': false });

    c = await change(d, '/v1/gc', { 'dry-run': true, cache: true });
    assert.equal([c.kind, c.data['dry-run'], c.data.orphans], ['gc', true, []]);
    assert.equal(names(c.data.evicted), layers);
    assert.equal(await backendLayers(d), layers, 'a dry run removes nothing');

    // The CLI through the daemon: the same report.
    let r = await cli(d, ['--json', 'gc', '--cache', '--dry-run']);
    assert.is(r.code, 0, r.stdout + r.stderr);
    const o = JSON.parse(r.stdout);
    assert.equal([o.gc.dryRun, o.gc.orphans, names(o.gc.evicted)], [true, [], layers]);
    const log = d.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(log.some((l) => l.method === 'POST' && l.path === '/v1/gc' && l.change), 'the CLI went through atelierd');

    c = await change(d, '/v1/gc', { cache: true });
    assert.equal([c.data['dry-run'], c.data.orphans], [false, []]);
    assert.equal(names(c.data.evicted), layers);
    assert.equal(await backendLayers(d), [], 'the backend no longer lists them');

    r = await cli(d, ['gc', '--cache']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'no garbage: every owned backend object is accounted for\n');
    c = await change(d, '/v1/gc', { cache: true });
    assert.equal(c.data, { orphans: [], 'dry-run': false, evicted: [] });
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('the CLI through atelierd: gc --cache evicts, with the human output of the command in process', async () => {
  const d = await daemon();
  try {
    const layers = await cacheEntries(d);
    const r = await cli(d, ['gc', '--cache']);
    assert.is(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith('evicted 2 cached SDK layer(s):\n'), r.stdout);
    assert.equal(r.stdout.trim().split('\n').slice(1).map((l) => l.trim()).sort(), layers.map((l) => `layers/${l}`));
    assert.equal(await backendLayers(d), []);
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('POST /v1/gc with a malformed body: 400 in the error envelope, nothing started or written', async () => {
  const d = await daemon();
  try {
    await cacheEntries(d);
    const changes = (await request(d.socket, 'GET', '/v1/changes?select=all')).body.result.length;
    const before = treeDigest(d.stateDir);
    for (const body of [{ cache: 'yes' }, { cache: 1 }, { cache: null }, { 'dry-run': true, cache: 'true' }, { cache: true, prune: true }]) {
      const r = await request(d.socket, 'POST', '/v1/gc', body);
      assert.is(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal([r.body.type, r.body['status-code'], r.body.result.kind], ['error', 400, 'INVALID_ARGUMENT'], r.text);
      assert.type(r.body.result.message, 'string');
    }
    const named = await request(d.socket, 'POST', '/v1/gc', { cache: 'yes' });
    assert.match(named.body.result.message, /cache/, 'the message names the field');
    assert.is((await request(d.socket, 'GET', '/v1/changes?select=all')).body.result.length, changes, 'no change was started');
    assert.is(treeDigest(d.stateDir), before, 'nothing journaled, nothing evicted');
    assert.is((await backendLayers(d)).length, 2);
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('atelierd --cache-keep: a bad value (or ATELIER_CACHE_KEEP) exits 2 at once, naming it, creating nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelierd-cache-'));
  try {
    const args = (extra: string[]) => ['--backend', 'fake', '--state-dir', join(dir, 'state'), '--run-dir', join(dir, 'run'), '--socket', join(dir, 'sock', 'a.sock'), ...extra];
    for (const value of ['12X', '1.5', '', 'lots']) {
      const s = spawnDaemon(args(['--cache-keep', value]));
      assert.is(await s.exit, 2, `--cache-keep ${JSON.stringify(value)}: ${s.output()}`);
      assert.ok(s.output().includes(`--cache-keep ${JSON.stringify(value)} is not valid`), s.output());
    }
    const e = spawnDaemon(args([]), { ATELIER_CACHE_KEEP: '3 layers' });
    assert.is(await e.exit, 2, e.output());
    assert.ok(e.output().includes('ATELIER_CACHE_KEEP "3 layers" is not valid'), e.output());
    for (const sub of ['state', 'run', 'sock']) assert.not.ok(existsSync(join(dir, sub)), `${sub} was not created`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('atelierd --cache-keep COUNT reaches its engine: 0 keeps nothing, ATELIER_CACHE_KEEP=1 keeps one', async () => {
  const d = await daemon();
  try {
    await d.stop();
    await d.start(['--cache-keep', '0']);
    await cacheEntries(d);
    // The policy applies once the remove's op has finished (its change is Done then): a moment later.
    await eventually('--cache-keep 0: evicted once the last workshop went', async () => (await backendLayers(d)).length === 0);
    await d.stop();
    await d.start([], { ATELIER_CACHE_KEEP: '1' });
    const layers = await cacheEntries(d);
    await eventually('ATELIER_CACHE_KEEP=1: one layer kept', async () => (await backendLayers(d)).length === 1);
    const kept = await backendLayers(d);
    assert.is(kept.length, 1, `one layer kept: ${kept}`);
    assert.ok(layers.includes(kept[0]!));
    // An empty variable is the default (10): both kept.
    await d.stop();
    await d.start([], { ATELIER_CACHE_KEEP: '' });
    await change(d, '/v1/gc', { cache: true });
    assert.equal(await backendLayers(d), []);
    assert.equal(await cacheEntries(d), await backendLayers(d));
  } finally {
    await d.stop();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test.run();
