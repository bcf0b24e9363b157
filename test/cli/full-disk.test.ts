/**
 * The CLI on a full disk (real tmpfs mounts, the overlay backend, the compiled `bin/atelier.js`):
 * the journal's disk (the state directory) and the store's (`<state-dir>/overlay`, mounted on its
 * own) filled each on its own. A making command exits 6 with `NO_SPACE` at once and writes nothing;
 * `list`, `show` and `df` answer (`df` naming the full disk); `remove` and `gc` work; once space
 * is back `launch` works. Through atelierd too: the same refusal and exit code.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { releaseMounts } from '../backends/overlay-env.ts';
import { fillFile, mountSmallFs, smallFsBlocker, smallFsUnavailable, type SmallFs } from '../support/small-fs.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/atelier.js');
const blocker = smallFsBlocker();

interface Setup {
  journalFs: SmallFs;
  storeFs: SmallFs;
  state: string;
  run: string;
  scratch: string;
  project: string;
}
let setup: Setup | null = null;
let daemon: ChildProcess | null = null;

test.after.each(async () => {
  if (daemon) {
    const exited = new Promise((r) => daemon!.once('exit', r));
    daemon.kill('SIGTERM');
    await exited;
    daemon = null;
  }
  if (!setup) return;
  await releaseMounts(setup.state);
  await setup.storeFs.unmount();
  await setup.journalFs.unmount();
  fs.rmSync(setup.scratch, { recursive: true, force: true });
  setup = null;
});

/** A state directory on one small tmpfs and its overlay store on another, mounted inside it. */
async function mount(): Promise<Setup> {
  const journalFs = await mountSmallFs('cli-journal', 8 << 20);
  const state = path.join(journalFs.dir, 'state');
  fs.mkdirSync(path.join(state, 'overlay'), { recursive: true });
  const storeFs = await mountSmallFs('cli-store', 48 << 20);
  // The store's tmpfs, moved under the state directory where the overlay backend keeps its store.
  const { execFileSync } = await import('node:child_process');
  execFileSync('mount', ['--move', storeFs.dir, path.join(state, 'overlay')]);
  const moved: SmallFs = { ...storeFs, dir: path.join(state, 'overlay') } as SmallFs;
  const filler = path.join(moved.dir, 'filler');
  const storeView: SmallFs = {
    dir: moved.dir,
    fill: () => fillFile(filler),
    unfill: () => fs.rmSync(filler, { force: true }),
    free: () => {
      const s = fs.statfsSync(moved.dir);
      return s.bavail * s.bsize;
    },
    unmount: async () => {
      await releaseMounts(moved.dir);
      // (releaseMounts under the state directory may have taken it already.)
      spawnSyncQuiet('umount', ['-l', moved.dir]);
      fs.rmSync(storeFs.dir, { recursive: true, force: true });
    },
  };
  const scratch = fs.mkdtempSync(path.join(tmpdir(), 'atelier-cli-full-'));
  const project = path.join(scratch, 'project');
  fs.cpSync(path.join(root, 'fixtures/quickstart'), project, { recursive: true });
  setup = { journalFs, storeFs: storeView, state, run: path.join(scratch, 'run'), scratch, project };
  return setup;
}

const spawnSyncQuiet = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' });

function atelier(s: Setup, args: string[], extra: string[] = ['--no-daemon']): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, '--backend', 'overlay', '--state-dir', s.state, '--run-dir', s.run, '--min-free', '1M', ...extra, ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Every file of the journal and checkpoints, with its bytes. */
function journalFiles(s: Setup): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of ['journal', 'checkpoints']) {
    const dir = path.join(s.state, d);
    if (!fs.existsSync(dir)) continue;
    for (const n of fs.readdirSync(dir)) out[`${d}/${n}`] = fs.readFileSync(path.join(dir, n)).toString('base64');
  }
  return out;
}

function workshopFile(s: Setup, name: string): string {
  const file = path.join(s.project, `${name}.yaml`);
  fs.writeFileSync(file, fs.readFileSync(path.join(s.project, 'workshop.yaml'), 'utf8').replace(/^name: .*$/m, `name: ${name}`));
  return file;
}

async function startDaemon(s: Setup, socket: string): Promise<void> {
  daemon = spawn(process.execPath, [path.join(root, 'bin/atelierd.js'), '--backend', 'overlay', '--state-dir', s.state, '--run-dir', s.run, '--socket', socket, '--min-free', '1M'], { stdio: 'ignore' });
  for (let i = 0; i < 400; i++) {
    const ok = await new Promise<boolean>((res) => {
      const req = http.get({ socketPath: socket, path: '/v1/system-info' }, (r) => {
        r.resume();
        res(r.statusCode === 200);
      });
      req.on('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('atelierd did not start');
}

if (blocker) {
  smallFsUnavailable(test, 'the CLI on a full disk', blocker);
} else {
  test("the journal's disk full: exit 6 at once and nothing written; list, show, df answer; remove and gc work; space back, launch works", async () => {
    const s = await mount();
    assert.is((await atelier(s, ['launch', workshopFile(s, 'one')])).code, 0);
    assert.is((await atelier(s, ['launch', workshopFile(s, 'two')])).code, 0);
    assert.is((await atelier(s, ['stash', 'two'])).code, 0);
    s.journalFs.fill();
    const before = journalFiles(s);
    const r = await atelier(s, ['--json', 'launch', workshopFile(s, 'three')]);
    assert.is(r.code, 6, r.stdout + r.stderr);
    const err = JSON.parse(r.stdout).error;
    assert.is(err.code, 'NO_SPACE');
    assert.ok(err.message.includes(s.state), err.message);
    assert.is((await atelier(s, ['stash', 'one'])).code, 6);
    assert.equal(journalFiles(s), before, 'refusals wrote nothing');
    const list = await atelier(s, ['list']);
    assert.is(list.code, 0);
    assert.match(list.stdout, /one/);
    assert.is((await atelier(s, ['show', 'two'])).code, 0);
    const df = await atelier(s, ['df']);
    assert.is(df.code, 0, df.stderr);
    assert.match(df.stdout, /journal .* FULL/);
    assert.match(df.stdout, /degraded/);
    const dfJson = JSON.parse((await atelier(s, ['--json', 'df'])).stdout).df;
    assert.equal(dfJson.degraded.full, ['journal']);
    // A shared SDK layer is nobody's own: it names the workshops holding it.
    const held = (workshop: string, kind: string) => dfJson.objects.some((o: { workshop: string | null; shared?: string[]; kind: string; bytes: number }) => (o.workshop === workshop || o.shared?.includes(workshop)) && o.kind === kind && o.bytes > 0);
    assert.ok(held('one', 'workshop') && held('one', 'sdk') && held('two', 'stash'), JSON.stringify(dfJson.objects));
    assert.ok(dfJson.journal.bytes > 0);
    assert.match(df.stdout, /two +stash /);
    const removed = await atelier(s, ['remove', 'one']);
    assert.is(removed.code, 0, removed.stderr);
    assert.is((await atelier(s, ['gc'])).code, 0);
    assert.not.match((await atelier(s, ['list'])).stdout, /\bone\b/);
    s.journalFs.unfill();
    const again = await atelier(s, ['launch', workshopFile(s, 'three')]);
    assert.is(again.code, 0, again.stderr);
    assert.match((await atelier(s, ['df'])).stdout, /not degraded/);
  });

  test("the store's disk full, through atelierd: launch refused with exit 6, remove works, space back without a restart", async () => {
    const s = await mount();
    const socket = path.join(s.scratch, 'atelierd.sock');
    await startDaemon(s, socket);
    const via = ['--socket', socket];
    assert.is((await atelier(s, ['launch', workshopFile(s, 'one')], via)).code, 0);
    s.storeFs.fill();
    const r = await atelier(s, ['--json', 'launch', workshopFile(s, 'two')], via);
    assert.is(r.code, 6, r.stdout + r.stderr);
    const err = JSON.parse(r.stdout).error;
    assert.is(err.code, 'NO_SPACE');
    assert.ok(err.message.includes(path.join(s.state, 'overlay')), err.message);
    const df = JSON.parse((await atelier(s, ['--json', 'df'], via)).stdout).df;
    assert.equal(df.degraded.full, ['backend']);
    assert.is((await atelier(s, ['remove', 'one'], via)).code, 0);
    s.storeFs.unfill();
    const again = await atelier(s, ['launch', workshopFile(s, 'two')], via);
    assert.is(again.code, 0, again.stderr);
  });
}

test.run();
