/**
 * The package as a daemon installs it: `npm pack` (which builds `dist/` through `prepare`), the
 * tarball installed into an empty project, and plain `node` (no tsx) using it: an engine on the
 * fake backend launches a workshop through `atelier`, `atelier/simulate` runs, every backend entry
 * point imports, and the installed `atelier --version` and `atelierd --help` run.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });

test('the packed tarball works under plain Node', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-pack-'));
  try {
    run('npm', ['pack', '--silent', '--pack-destination', dir], ROOT);
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    assert.ok(tarball, 'npm pack wrote a tarball');
    const listing = run('tar', ['-tzf', join(dir, tarball)], dir);
    assert.ok(listing.includes('package/dist/index.js') && listing.includes('package/dist/index.d.ts'), 'compiled JavaScript and declarations');
    assert.not.ok(/package\/(machines|engine|cli)\/[^\n]*\.ts\n/.test(listing.replace(/\.d\.ts\n/g, '\n')), 'no TypeScript sources');
    const app = join(dir, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'host', version: '1.0.0', type: 'module', private: true }));
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--silent', join(dir, tarball)], app);
    writeFileSync(
      join(app, 'main.mjs'),
      `
import { openEngine, loadWorkshopFile } from 'atelier';
import { createFakeBackend } from 'atelier/backends/fake';
import { simulate } from 'atelier/simulate';
import * as overlay from 'atelier/backends/overlay';
import * as lxd from 'atelier/backends/lxd';
import * as types from 'atelier/backends/types';
const backend = createFakeBackend({ seed: 1 });
const engine = await openEngine({ stateDir: ${JSON.stringify(join(dir, 'state'))}, runDir: ${JSON.stringify(join(dir, 'run'))}, backend });
const spec = await loadWorkshopFile(${JSON.stringify(join(ROOT, 'fixtures/quickstart/workshop.yaml'))}, { defaultBase: backend.defaultBase });
const ws = await engine.launch(spec);
await engine.close();
const report = await simulate({ seed: 1, runs: 2, commands: 10 });
console.log(JSON.stringify({ status: ws.status, sdks: ws.sdks.length, simulated: report.runs, failure: report.failure ?? null, overlay: typeof overlay.createOverlayBackend, lxd: typeof lxd.createLxdBackend, types: typeof types.isBackendError }));
`,
    );
    const out = JSON.parse(run(process.execPath, ['main.mjs'], app).trim().split('\n').at(-1)!);
    assert.equal(out, { status: 'ready', sdks: 2, simulated: 2, failure: null, overlay: 'function', lxd: 'function', types: 'function' });
    assert.match(run(join(app, 'node_modules/.bin/atelier'), ['--version'], app).trim(), /^\d+\.\d+\.\d+$/);
    assert.match(run(join(app, 'node_modules/.bin/atelierd'), ['--help'], app), /Usage: atelierd/);
    assert.not.ok(readdirSync(join(app, 'node_modules')).includes('tsx'), 'tsx is a development dependency only');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
