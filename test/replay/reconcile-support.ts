/**
 * Shared set-up for the inventory and replay-reconcile tests: the golden crash images (always
 * copied, never touched), the CLI in process with its output captured (by `main`, or a command
 * function with a Context whose owner is the fixtures' `alice`), a byte-for-byte snapshot of a
 * directory tree, and a live reconcile of a crash image to compare the replay with.
 */
import { cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createFakeBackend } from '../../backends/fake/index.ts';
import type { FakeImage } from '../../backends/fake/store.ts';
import { main } from '../../cli/atelier.ts';
import { resolveContext, type Context, type GlobalOptions } from '../../cli/context.ts';
import { readRecords } from '../../replay/image.ts';
import { replayIds } from '../../cli/replay/reconcile.ts';
import { openEngineImpl } from '../../engine/engine.ts';
import { steppingClock } from '../../engine/ids.ts';
import type { JournalRecord } from '../../events/catalogue.ts';

export const FIXTURES = join(import.meta.dirname, '../../fixtures/journals');

/**
 * Crash images to replay: every case's `image/` (a crash at each kind of pending effect, in both
 * generations), and the end state of the torn-tail and random-walk cases (their `state/` and
 * `backend.json`: objects lost or left behind, a torn tail to cut).
 */
export function crashImages(): { name: string; dir: string }[] {
  const out: { name: string; dir: string }[] = [];
  for (const c of readdirSync(FIXTURES).sort()) {
    if (existsSync(join(FIXTURES, c, 'image', 'backend.json'))) out.push({ name: `${c}/image`, dir: join(FIXTURES, c, 'image') });
    if (/^(v2-)?(random-\d+|torn-tail|missing-layer|missing-stash|gc-orphan|run-keep)$/.test(c)) out.push({ name: c, dir: join(FIXTURES, c) });
  }
  return out;
}

/** A fresh temporary directory (remove it with `rmSync(dir, { recursive: true, force: true })`). */
export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `atelier-test-${label}-`));
}

/** A copy of a crash image's `state/` and `run/` in a fresh temporary directory. */
export function copyImage(dir: string): string {
  const to = tempDir('image');
  cpSync(join(dir, 'state'), join(to, 'state'), { recursive: true });
  if (existsSync(join(dir, 'run'))) cpSync(join(dir, 'run'), join(to, 'run'), { recursive: true });
  return to;
}

/** The fake backend's image a crash image holds. */
export function backendImage(dir: string): FakeImage {
  return JSON.parse(readFileSync(join(dir, 'backend.json'), 'utf8')) as FakeImage;
}

export { snapshot } from '../support/tree.ts';

/** The directories under the temp dir whose name starts with `prefix`. */
export function tempLeftovers(prefix = 'atelier-replay-reconcile-'): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith(prefix)).sort();
}

export interface Captured {
  code: number;
  out: string;
  err: string;
}

function captureIo(): { io: { stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean }; env: NodeJS.ProcessEnv }; out(): string; err(): string } {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => ((out += s), true) }, stderr: { write: (s: string) => ((err += s), true) }, env: process.env },
    out: () => out,
    err: () => err,
  };
}

/** `atelier ARGS` in process, output captured. */
export async function cli(args: string[]): Promise<Captured> {
  const c = captureIo();
  const code = await main(['node', 'atelier', ...args], c.io as never);
  return { code, out: c.out(), err: c.err() };
}

/**
 * A command function run as the CLI runs it (errors printed and turned into exit codes), with a
 * Context as `resolveContext` makes it, for `owner` (the fixtures' objects are alice's).
 */
export async function command(g: Partial<GlobalOptions> & { owner?: string }, fn: (ctx: Context) => Promise<number>): Promise<Captured> {
  const c = captureIo();
  const { owner, ...globals } = g;
  const base = resolveContext({ backend: 'fake', ...globals } as GlobalOptions, c.io as never);
  const ctx: Context = owner === undefined ? base : { ...base, owner, backendConfig: { ...base.backendConfig, owner } };
  let code: number;
  try {
    code = await fn(ctx);
  } catch (e) {
    code = ctx.out.error(e);
  }
  return { code, out: c.out(), err: c.err() };
}

/** The error code a `--json` run printed. */
export function errorCode(r: Captured): string | undefined {
  try {
    return (JSON.parse(r.out) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** What a live start decides on a crash image: the records it journaled after the crash, and the backend calls it made. */
export interface LiveReconcile {
  durable: JournalRecord[];
  volatile: JournalRecord[];
  /** The fake's trace: every call that changes something. */
  actions: string[];
  /** Each workshop's status afterwards. */
  workshops: Record<string, string>;
}

/**
 * Open an engine on a copy of a crash image with the image's backend, as a start does (it
 * reconciles while opening), with the replay's ids and a clock from `at`; return what it journaled.
 */
export async function liveReconcile(dir: string, at: string): Promise<LiveReconcile> {
  const copy = copyImage(dir);
  try {
    const before = await readRecords(join(copy, 'state', 'journal'));
    const vdir = join(copy, 'run', 'volatile');
    const vbefore = existsSync(vdir) ? (await readRecords(vdir)).records : [];
    const backend = createFakeBackend({ seed: 99 });
    backend.load(backendImage(dir));
    backend.clearCalls();
    const engine = await openEngineImpl({ stateDir: join(copy, 'state'), runDir: join(copy, 'run'), backend, owner: 'alice', ids: replayIds(), clock: steppingClock(at) });
    const workshops = Object.fromEntries(Object.entries(engine.folded.workshops).map(([k, w]) => [k, w.status]));
    await engine.close();
    const lastSeq = before.records.at(-1)?.seq ?? 0;
    const vlast = vbefore.at(-1)?.seq ?? 0;
    const durable = (await readRecords(join(copy, 'state', 'journal'))).records.filter((r) => r.seq > lastSeq);
    const volatile = existsSync(vdir) ? (await readRecords(vdir)).records.filter((r) => r.seq > vlast) : [];
    return { durable, volatile, actions: backend.trace(), workshops };
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}
