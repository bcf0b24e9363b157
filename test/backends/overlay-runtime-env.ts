/**
 * Shared by the overlay runtime tests (`overlay-runtime*.test.ts`): whether containers can run
 * here (root, runc, a static catatonit), the skip-or-fail rule, a started workshop, stream
 * collectors, and looks at processes and runc from the host.
 *
 * Without root or runc the tests skip with the reason printed; in CI (`process.env.CI`) they fail
 * instead, naming what to install: CI runs as root with runc and catatonit, and must run them.
 *
 * @example
 * ```ts
 * const t = suite('overlay runtime');
 * if (await runtimeMissing(t)) t.run(); else { t('...', withRuntime(async (f, ws) => { ... })); t.run(); }
 * ```
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Test } from 'uvu';
import { findRuntime } from '../../backends/overlay/runtime.ts';
import type { ObjectRef, Tags } from '../../backends/types.ts';
import { overlayFixture } from './overlay-env.ts';
import type { OverlayFixture } from './overlay-env.ts';

export const WS = (name: string): ObjectRef => ({ space: 'workshops', name });
export const LY = (name: string): ObjectRef => ({ space: 'layers', name });
export const tags = (kind: Tags['kind'], extra: Partial<Tags> = {}): Tags => ({ owner: 'alice', op: `op-${kind}`, kind, ...extra }) as Tags;

/**
 * Register the "containers cannot run here" outcome when they cannot: a failing test in CI, a
 * skipped one elsewhere. Returns true when the caller must register nothing else.
 */
export async function runtimeMissing(test: Test, what: string): Promise<boolean> {
  const found = await findRuntime();
  if ('tools' in found) return false;
  const fix = 'run as root with runc and catatonit installed (Debian: apt-get install runc catatonit busybox-static)';
  if (process.env.CI) {
    test(`${what}: containers must run in CI`, () => {
      throw new Error(`${found.reason}; ${fix}`);
    });
  } else {
    console.log(`SKIP ${what}: ${found.reason}; ${fix}`);
    test.skip(`${what} (no container runtime: ${found.reason})`, () => undefined);
  }
  return true;
}

/** A fresh overlayfs store (runc required) with a started workshop `w` tagged `workshop: nav2`. */
export function withRuntime(body: (f: OverlayFixture, ws: ObjectRef) => Promise<void>, name = 'w') {
  return async () => {
    const f = await overlayFixture('overlayfs', { runtime: 'runc' });
    try {
      const ws = WS(name);
      await f.backend.create({ target: ws, source: { base: f.backend.defaultBase }, tags: tags('workshop', { workshop: 'nav2' }) });
      await f.backend.start(ws);
      await body(f, ws);
    } finally {
      await f.cleanup();
    }
  };
}

/** A stream that keeps what it is given, and when each piece came. */
export class Collect extends Writable {
  text = '';
  readonly times: number[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString('utf8');
    this.times.push(Date.now());
    cb();
  }
  /** Resolve once the text matches `re` (within `ms`). */
  async waitFor(re: RegExp, ms = 5000): Promise<void> {
    for (const end = Date.now() + ms; !re.test(this.text); ) {
      if (Date.now() > end) throw new Error(`no ${re} in ${JSON.stringify(this.text)} after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Host pids whose command line is exactly `argv`. */
export async function hostPids(argv: readonly string[]): Promise<number[]> {
  const want = argv.join('\0');
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmd.replace(/\0$/, '') === want) out.push(Number(e));
  }
  return out;
}

/** Poll `check` until it holds (within `ms`). */
export async function eventually(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !(await check()); ) {
    if (Date.now() > end) throw new Error(`${what}: still not so after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `runc state` of a container of the fixture's store, or null when runc knows none. */
export function runcState(f: OverlayFixture, id: string): { status: string; pid: number } | null {
  try {
    return JSON.parse(execFileSync('runc', ['--root', join(f.backend.runDir, 'runc'), 'state', id], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { status: string; pid: number };
  } catch {
    return null;
  }
}

/** Everything in an instance's upper directory (relative paths), read from its meta. */
export async function upperEntries(f: OverlayFixture, ref: ObjectRef): Promise<string[]> {
  const meta = JSON.parse(await readFile(join(f.backend.root, 'objects', ref.space, ref.name, 'meta.json'), 'utf8')) as { upper: string };
  const out = execFileSync('find', [join(f.backend.root, 'blobs', meta.upper), '-mindepth', '1', '-printf', '%P\\n'], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean).sort();
}
