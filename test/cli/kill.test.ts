/**
 * A CLI killed with its whole process group (SIGKILL) in the middle of a command leaves no lock
 * behind: the next command starts at once (the state directory's lock is released by the kernel,
 * `events/kernel-lock.ts`), and reconciliation settles the op that was in flight.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/atelier.js');
const quick = path.join(root, 'fixtures/quickstart/workshop.yaml');
const quickV2 = path.join(root, 'fixtures/quickstart/workshop-v2.yaml');

function atelier(state: string, run: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, '--backend', 'fake', '--state-dir', state, '--run-dir', run, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

test('SIGKILL to the CLI\'s process group mid-refresh: the next command starts at once, and finds the refresh settled', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'atelier-kill-'));
  const state = path.join(dir, 'state');
  const run = path.join(dir, 'run');
  try {
    assert.is((await atelier(state, run, ['launch', quick])).code, 0);
    for (let round = 0; round < 4; round++) {
      // A slow backend, so that the kill lands while the refresh runs; its own process group.
      const child = spawn(process.execPath, [bin, '--backend', 'fake', '--state-dir', state, '--run-dir', run, 'refresh', round % 2 ? quick : quickV2], {
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, ATELIER_FAKE_LATENCY_MS: '150' },
      });
      let err = '';
      child.stderr!.on('data', (d) => (err += d));
      await new Promise((r) => setTimeout(r, 700 + 150 * round));
      process.kill(-child.pid!, 'SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const t0 = Date.now();
      const next = await atelier(state, run, ['--json', 'reconcile']);
      assert.is(next.code, 0, `round ${round}: the next command ran (${next.stdout}${next.stderr})`);
      assert.ok(Date.now() - t0 < 10_000, `round ${round}: at once, not after a stale-lock delay`);
      const show = JSON.parse((await atelier(state, run, ['--json', 'show', 'quickstart'])).stdout);
      assert.is(show.workshop.status, 'ready', `round ${round}: the refresh was settled (${err.slice(0, 200)})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
