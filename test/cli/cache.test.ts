/**
 * The SDK cache from the command line (the compiled `bin/atelier.js`, in process: `--no-daemon`):
 * `--cache-keep SIZE|COUNT` (and `ATELIER_CACHE_KEEP`) read before anything is opened, a bad value
 * refused with exit 2 and nothing written; the policy reaching the engine; `atelier gc --cache`
 * evicting every cached SDK layer (`--dry-run` listing them), on the fake backend and on overlay.
 *
 * The cache entries are made as users make them: two workshops (two projects) with the same SDKs
 * on the same base share their SDK layers; once both are removed, those layers are held by nobody
 * and stay as cache entries (`shared: true` records in the state, objects on the backend).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { formatGc } from '../../cli/output.ts';
import { readState } from '../../engine/read-state.ts';
import { releaseMounts } from '../backends/overlay-env.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/atelier.js');
const quick = path.join(root, 'fixtures/quickstart/workshop.yaml');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface Dirs {
  base: string;
  state: string;
  run: string;
  backend: string;
}

const made: Dirs[] = [];
test.after(async () => {
  for (const d of made) {
    if (d.backend === 'overlay') await releaseMounts(d.state).catch(() => undefined);
    rmSync(d.base, { recursive: true, force: true });
  }
});

function fresh(backend = 'fake'): Dirs {
  const base = mkdtempSync(path.join(tmpdir(), 'atelier-cache-'));
  const d = { base, state: path.join(base, 'state'), run: path.join(base, 'run'), backend };
  made.push(d);
  return d;
}

/** `atelier --backend B --state-dir .. --run-dir .. --no-daemon ARGS`, with `env` added. */
function atelier(d: Dirs, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, '--backend', d.backend, '--state-dir', d.state, '--run-dir', d.run, '--socket', path.join(d.base, 'none.sock'), '--no-daemon', ...args],
      { cwd: root, env: { ...process.env, NO_COLOR: '1', ATELIER_CACHE_KEEP: '', ...env }, timeout: 120_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

function expectCode(r: Run, code: number, what = ''): void {
  assert.is(r.code, code, `${what} exit ${r.code}, wanted ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

function json(r: Run): any {
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 1, `one line of JSON on stdout, got: ${r.stdout}\nstderr: ${r.stderr}`);
  return JSON.parse(lines[0]!);
}

/** Every file of the state directory with its bytes (checkpoints and journal included). */
function stateBytes(d: Dirs): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(path.relative(d.state, p), readFileSync(p).toString('base64'));
    }
  };
  walk(d.state);
  return out;
}

/** Two projects whose workshops (`one`, `two`) have the quick start's SDKs: the same layers. */
function twoProjects(d: Dirs): [string, string] {
  const dirs = ['one', 'two'].map((name) => {
    const dir = path.join(d.base, name);
    cpSync(path.dirname(quick), dir, { recursive: true });
    writeFileSync(path.join(dir, 'workshop.yaml'), readFileSync(path.join(dir, 'workshop.yaml'), 'utf8').replace(/^name: quickstart$/m, `name: ${name}`));
    return dir;
  });
  return [dirs[0]!, dirs[1]!];
}

/** The names of the state's shared layer records that are present (cache entries once nobody holds them). */
async function sharedLayers(d: Dirs): Promise<string[]> {
  const st = await readState(d.state, d.run);
  assert.ok(st, 'the state directory holds a state');
  return Object.values(st.durable.objects)
    .filter((o) => o.shared === true && o.state === 'present')
    .map((o) => o.ref.name)
    .sort();
}

/** The layer names the backend lists for this user (`atelier inventory`). */
async function backendLayers(d: Dirs): Promise<string[]> {
  const r = await atelier(d, ['--json', 'inventory']);
  expectCode(r, 0, 'inventory');
  return (json(r).objects as { ref: { space: string; name: string } }[])
    .filter((o) => o.ref.space === 'layers')
    .map((o) => o.ref.name)
    .sort();
}

/** Launch `one` and `two` (sharing their SDK layers), remove both: returns the shared layers' names. */
async function cacheEntries(d: Dirs, removeArgs: string[] = [], env: Record<string, string> = {}): Promise<string[]> {
  const [one, two] = twoProjects(d);
  const a = await atelier(d, ['--json', 'launch', one]);
  expectCode(a, 0, 'launch one');
  const b = await atelier(d, ['--json', 'launch', two]);
  expectCode(b, 0, 'launch two');
  const layers = (json(a).workshop.sdks as { layer: string }[]).map((s) => s.layer).sort();
  assert.equal((json(b).workshop.sdks as { layer: string }[]).map((s) => s.layer).sort(), layers, 'the two workshops share their SDK layers');
  assert.equal(await sharedLayers(d), layers, 'the shared layers are in the state');
  expectCode(await atelier(d, ['remove', 'one']), 0, 'remove one');
  expectCode(await atelier(d, [...removeArgs, 'remove', 'two'], env), 0, 'remove two');
  return layers;
}

// ---------------------------------------------------------------- --cache-keep

const BAD_VALUES = ['12X', '1.5', '-1', '', 'ten', '10 layers', '5 GiBs'];

/** Map with at most `n` at a time: each spawn of the CLI is slow, and these cases are independent. */
async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: n }, worker));
}

test('--cache-keep: a bad value is INVALID_ARGUMENT (exit 2) naming the option, and nothing is created', async () => {
  const d = fresh();
  const cases = BAD_VALUES.flatMap((value, i) => [
    { value, args: [['list'], ['launch', quick], ['gc', '--cache']][i % 3]!, json: true },
    { value, args: ['launch', quick], json: false },
  ]);
  await pool(cases, 4, async ({ value, args, json: asJson }) => {
    const what = `--cache-keep ${JSON.stringify(value)} ${args.join(' ')}`;
    if (asJson) {
      const r = await atelier(d, ['--json', '--cache-keep', value, ...args]);
      expectCode(r, 2, what);
      const o = json(r);
      assert.equal([o.ok, o.error.code, o.error.exitCode], [false, 'INVALID_ARGUMENT', 2], what);
      assert.ok(o.error.message.includes(`--cache-keep ${JSON.stringify(value)}`), o.error.message);
      assert.is(r.stderr, '', 'JSON mode prints errors on stdout only');
    } else {
      const h = await atelier(d, ['--cache-keep', value, ...args]);
      expectCode(h, 2, what);
      assert.ok(h.stderr.includes(`--cache-keep ${JSON.stringify(value)} is not valid: `) && h.stderr.trim().endsWith('[INVALID_ARGUMENT]'), h.stderr);
      assert.is(h.stdout, '');
    }
  });
  const e = await atelier(d, ['--json', 'launch', quick], { ATELIER_CACHE_KEEP: '20 parsecs' });
  expectCode(e, 2, 'ATELIER_CACHE_KEEP');
  assert.equal([json(e).error.code, json(e).error.message.startsWith('ATELIER_CACHE_KEEP "20 parsecs"')], ['INVALID_ARGUMENT', true], json(e).error.message);
  // The option wins over the variable.
  expectCode(await atelier(d, ['--json', '--cache-keep', 'x', 'list'], { ATELIER_CACHE_KEEP: '3' }), 2);
  assert.not.ok(existsSync(d.state), 'a refused command creates no state directory');
});

test('--cache-keep: a bad value after a launch leaves the state directory byte-for-byte unchanged', async () => {
  const d = fresh();
  expectCode(await atelier(d, ['launch', quick]), 0);
  const before = stateBytes(d);
  assert.ok(before.size > 0);
  const commands = [['stash', 'quickstart'], ['remove', 'quickstart'], ['gc', '--cache'], ['reconcile']];
  await pool(BAD_VALUES, 4, async (value) => {
    for (const args of commands) expectCode(await atelier(d, ['--cache-keep', value, ...args]), 2, `--cache-keep ${JSON.stringify(value)} ${args.join(' ')}`);
  });
  expectCode(await atelier(d, ['remove', 'quickstart'], { ATELIER_CACHE_KEEP: '1.5' }), 2);
  assert.equal(stateBytes(d), before);
});

test('--cache-keep: good values are taken (counts, sizes, an empty ATELIER_CACHE_KEEP meaning the default)', async () => {
  const d = fresh();
  await pool(['0', '10', '20GiB', '500M', '1.5G', '64k', '100B'], 4, async (value) => expectCode(await atelier(d, ['--cache-keep', value, 'base', 'list']), 0, value));
  expectCode(await atelier(d, ['--json', 'launch', quick], { ATELIER_CACHE_KEEP: '' }), 0);
  expectCode(await atelier(d, ['--json', '--cache-keep', '20GiB', 'list'], { ATELIER_CACHE_KEEP: 'bogus-but-overridden' }), 0);
});

test('--cache-keep reaches the engine: COUNT layers kept once the last workshop is removed (option and variable)', async () => {
  // Three state directories side by side: the default, --cache-keep 1, ATELIER_CACHE_KEEP=0.
  const [d10, d1, d0] = [fresh(), fresh(), fresh()];
  const [layers] = await Promise.all([cacheEntries(d10), cacheEntries(d1, ['--cache-keep', '1']), cacheEntries(d0, [], { ATELIER_CACHE_KEEP: '0' })]);
  // The default (10) keeps both layers.
  assert.is(layers.length, 2);
  assert.equal(await sharedLayers(d10), layers);
  assert.equal(await backendLayers(d10), layers);
  // --cache-keep 1: the command that let both go kept one of them.
  const kept = await sharedLayers(d1);
  assert.is(kept.length, 1, `one layer kept: ${kept}`);
  assert.ok(layers.includes(kept[0]!));
  assert.equal(await backendLayers(d1), kept, 'the evicted layer is gone from the backend');
  // ATELIER_CACHE_KEEP=0: none kept.
  assert.equal(await sharedLayers(d0), []);
  assert.equal(await backendLayers(d0), []);
});

// ---------------------------------------------------------------- gc --cache

for (const backend of ['fake', 'overlay']) {
  const t = backend === 'overlay' && process.platform !== 'linux' ? test.skip : test;
  t(`${backend}: gc --cache --dry-run lists the cached SDK layers and removes nothing; gc --cache evicts them`, async () => {
    const d = fresh(backend);
    const layers = await cacheEntries(d);
    const refs = layers.map((name) => ({ space: 'layers', name }));
    assert.equal(await backendLayers(d), layers, 'the backend still holds the cache entries');

    // gc alone leaves the cache alone: its entries are not garbage.
    let r = await atelier(d, ['--json', 'gc']);
    expectCode(r, 0);
    assert.equal(json(r).gc, { orphans: [], dryRun: false });
    r = await atelier(d, ['gc', '--dry-run']);
    assert.is(r.stdout, 'no garbage: every owned backend object is accounted for\n');

    r = await atelier(d, ['--json', 'gc', '--cache', '--dry-run']);
    expectCode(r, 0);
    assert.equal(json(r).gc, { orphans: [], dryRun: true, evicted: refs });
    r = await atelier(d, ['gc', '--dry-run', '--cache']);
    expectCode(r, 0);
    assert.is(r.stdout, [`would evict 2 cached SDK layer(s):`, ...layers.map((l) => `  layers/${l}`), ''].join('\n'));
    assert.equal(await sharedLayers(d), layers, 'a dry run evicts nothing from the state');
    assert.equal(await backendLayers(d), layers, 'a dry run removes nothing from the backend');

    r = await atelier(d, ['gc', '--cache']);
    expectCode(r, 0);
    assert.is(r.stdout, [`evicted 2 cached SDK layer(s):`, ...layers.map((l) => `  layers/${l}`), ''].join('\n'));
    assert.equal(await sharedLayers(d), [], 'no cache entry left in the state');
    assert.equal(await backendLayers(d), [], 'the backend no longer lists them');

    r = await atelier(d, ['--json', 'gc', '--cache']);
    expectCode(r, 0);
    assert.equal(json(r).gc, { orphans: [], dryRun: false, evicted: [] });
    r = await atelier(d, ['gc', '--cache']);
    assert.is(r.stdout, 'no garbage: every owned backend object is accounted for\n');

    // A layer a workshop holds is no cache entry: launched again, then gc --cache keeps it.
    const again = await atelier(d, ['--json', 'launch', path.join(d.base, 'one')]);
    expectCode(again, 0);
    r = await atelier(d, ['--json', 'gc', '--cache']);
    assert.equal(json(r).gc.evicted, []);
    assert.equal(await backendLayers(d), layers);
    expectCode(await atelier(d, ['remove', 'one']), 0);
  });
}

test('formatGc: orphans and evicted layers each listed; the no-garbage line when both are empty', () => {
  const orphan = { space: 'workshops' as const, name: 'x-1' };
  const layer = { space: 'layers' as const, name: 'ros2-0123456789abcdef' };
  assert.is(formatGc({ orphans: [orphan], evicted: [layer], dryRun: false }), 'removed 1 object(s):\n  workshops/x-1\nevicted 1 cached SDK layer(s):\n  layers/ros2-0123456789abcdef');
  assert.is(formatGc({ orphans: [orphan], evicted: [layer], dryRun: true }), 'would remove 1 object(s):\n  workshops/x-1\nwould evict 1 cached SDK layer(s):\n  layers/ros2-0123456789abcdef');
  assert.is(formatGc({ orphans: [], evicted: [layer], dryRun: true }), 'would evict 1 cached SDK layer(s):\n  layers/ros2-0123456789abcdef');
  assert.is(formatGc({ orphans: [orphan], dryRun: false }), 'removed 1 object(s):\n  workshops/x-1');
  assert.is(formatGc({ orphans: [], evicted: [], dryRun: false }), 'no garbage: every owned backend object is accounted for');
  assert.is(formatGc({ orphans: [], dryRun: true }), 'no garbage: every owned backend object is accounted for');
});

test.run();
