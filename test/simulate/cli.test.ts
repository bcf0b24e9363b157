import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { simulateCommand } from '../../cli/simulate.ts';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } } };
}

test('atelier simulate --seed 1 --runs 3 prints a summary and exits 0', async () => {
  const t = io();
  const code = await simulateCommand(['--seed', '1', '--runs', '3', '--commands', '10', '--backend', 'fake'], t.io);
  const text = t.out.join('');
  assert.is(code, 0, text + t.err.join(''));
  assert.match(text, /^seed 1: 3 runs, \d+ commands/m);
  assert.match(text, /all 10 invariants held/);
});

test('atelier simulate --reproduce replays a fixture (fixed: exits 0)', async () => {
  const t = io();
  const code = await simulateCommand(['--reproduce', new URL('../../fixtures/simulate/refresh-keeps-stash', import.meta.url).pathname], t.io);
  assert.is(code, 0, t.out.join('') + t.err.join(''));
  assert.match(t.out.join(''), /did not fail/);
});

test('atelier simulate rejects a bad option with exit 2', async () => {
  const t = io();
  assert.is(await simulateCommand(['--runs', 'many'], t.io), 2);
  assert.match(t.err.join(''), /--runs needs a whole number/);
  const u = io();
  assert.is(await simulateCommand(['--backend', 'lxd'], u.io), 2);
  assert.match(u.err.join(''), /--backend must be one of fake, overlay/);
});

test.run();
