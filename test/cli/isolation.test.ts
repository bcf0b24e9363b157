/**
 * `atelier show` says what a workshop is isolated by on this host's backend: runc containers as
 * root on overlay, no isolation for an unprivileged user's copy driver (run as `nobody` through
 * util-linux `setpriv`), the fake's interpreter, an LXD container.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { isolationOf } from '../../backends/select.ts';
import { findRuntime } from '../../backends/overlay/runtime.ts';
import { runCli } from '../support/cli.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const ROOT = join(import.meta.dirname, '..', '..');

test('the fake and LXD say what they are', async () => {
  assert.is((await isolationOf('fake')).kind, 'none');
  assert.is((await isolationOf('lxd')).kind, 'lxd');
});

test('overlay as root: runc when the runtime is there, else chroot naming what is missing', async () => {
  if (process.getuid?.() !== 0) return void console.log('SKIP: not root');
  const found = await findRuntime();
  const r = await isolationOf('overlay');
  if ('tools' in found) assert.is(r.kind, 'runc');
  else {
    assert.is(r.kind, 'chroot');
    assert.ok(r.detail.includes(found.reason));
  }
});

test('overlay for an unprivileged user: no isolation (the copy driver, hooks on the host), said in words', () => {
  if (process.getuid?.() !== 0) return void console.log('SKIP: not root (setpriv needs it to become nobody)');
  // The compiled module (npm test builds dist/ first), so nobody needs no tsx cache of its own.
  const out = execFileSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e', `import(${JSON.stringify(join(ROOT, 'dist/backends/select.js'))}).then((m) => m.isolationOf('overlay')).then((r) => console.log(JSON.stringify(r)))`], { encoding: 'utf8' });
  const r = JSON.parse(out) as { kind: string; detail: string };
  assert.is(r.kind, 'host');
  assert.match(r.detail, /no isolation/);
  assert.match(r.detail, /no exec or shell/);
});

test('atelier show prints the isolation line, and --json carries it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-isolation-'));
  try {
    const base = ['--backend', 'fake', '--state-dir', join(dir, 's'), '--run-dir', join(dir, 'r'), '--no-daemon'];
    assert.is((await runCli([...base, 'launch', join(ROOT, 'fixtures/quickstart/workshop.yaml')])).code, 0);
    const human = await runCli([...base, 'show', 'quickstart']);
    assert.match(human.out, /^isolation\s+none: the fake backend is in memory/m);
    const json = await runCli([...base, '--json', 'show', 'quickstart']);
    assert.is(json.json.isolation.kind, 'none');
    assert.is(json.json.workshop.name, 'quickstart');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
