/**
 * Shared set-up for engine tests: a fake backend, an engine with deterministic ids and clock in
 * fresh temporary directories, workshop specs, and the checks every engine test repeats.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { createFakeBackend, type FakeBackend } from '../../backends/fake/index.ts';
import type { SdkSpec, WorkshopSpec } from '../../events/catalogue.ts';
import { openEngineImpl as openEngine, type EngineImpl } from '../../engine/engine.ts';
import { objectKey } from '../../machines/index.ts';
import { isAtelierError } from '../../machines/errors.ts';
import { sequentialIds, steppingClock } from '../../engine/ids.ts';
import type { IdSource } from '../../engine/api.ts';
import type { CallKind } from '../../backends/types.ts';

export interface Fixture {
  dir: string;
  stateDir: string;
  runDir: string;
  backend: FakeBackend;
  ids: IdSource;
  engine: EngineImpl;
  reopen(): Promise<EngineImpl>;
  cleanup(): Promise<void>;
}

/** `sdkCache: false`: every SDK layer the workshop's own, as before the SDK cache (`EngineOptions.sdkCache`). */
export async function fixture(opts: { seed?: number; sdkCache?: boolean } = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-test-'));
  const stateDir = join(dir, 'state');
  const runDir = join(dir, 'run');
  const backend = createFakeBackend({ seed: opts.seed ?? 1 });
  const ids = sequentialIds();
  const clock = steppingClock();
  const open = () => openEngine({ stateDir, runDir, backend, owner: 'alice', ids, clock, ...(opts.sdkCache === false ? { sdkCache: false } : {}) });
  const f: Fixture = {
    dir,
    stateDir,
    runDir,
    backend,
    ids,
    engine: await open(),
    async reopen() {
      f.engine = await open();
      return f.engine;
    },
    async cleanup() {
      await f.engine.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return f;
}

/** An SDK whose hook writes `/etc/<file>` with `text`. The hash stands in for the content hash. */
export function sdk(name: string, text: string, parent = ''): SdkSpec {
  return { name, hash: `${name}:${text}:${parent}`, script: `echo ${text} > "\${ATELIER_ROOTFS%/}/etc/${name}"` };
}

/** The `AtelierError` code `p` rejects with, or `ok`. */
export const codeOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e) => (isAtelierError(e) ? e.code : `not an AtelierError: ${e}`));

export function spec(sdks: SdkSpec[], over: Partial<WorkshopSpec> = {}): WorkshopSpec {
  return { name: 'nav2', base: 'busybox', defaultBase: false, projectId: '1a2b3c4d', sdks, ...over };
}

export const V1 = spec([sdk('ros2', 'humble'), sdk('nav', 'one')]);
/** The last SDK changed: a refresh reuses the first layer. */
export const V2 = spec([sdk('ros2', 'humble'), sdk('nav', 'two')]);
/** The first SDK changed: a full rebuild from the base. */
export const V3 = spec([sdk('ros2', 'jazzy'), sdk('nav', 'one')]);
export const WS = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;

/** What a workshop's root filesystem holds, as far as these tests write it. */
export async function content(backend: FakeBackend, names = ['ros2', 'nav']): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const n of names) out[n] = (await backend.readFile(WS, `/etc/${n}`))?.content ?? null;
  return out;
}

/** The backend holds exactly what the state accounts for: no owned orphan, nothing missing. */
export async function assertAccounted(engine: EngineImpl, backend: FakeBackend): Promise<void> {
  const held = (await backend.list('alice')).map((o) => objectKey(o.ref)).sort();
  const expected = Object.values(engine.folded.objects)
    .map((o) => objectKey(o.ref))
    .sort();
  assert.equal(held, expected, 'backend inventory equals the objects the state accounts for');
  assert.equal(Object.keys(engine.folded.ops), [], 'no op left in progress');
}

/** The commands the trace and crash tables exercise. */
export type Cmd = 'launch' | 'refresh-last' | 'refresh-first' | 'stash' | 'unstash' | 'restore' | 'remove';
export const COMMANDS: readonly Cmd[] = ['launch', 'refresh-last', 'refresh-first', 'stash', 'unstash', 'restore', 'remove'];

/** Bring the fixture to where the command starts, then clear the call log. */
export async function prepare(f: Fixture, cmd: Cmd): Promise<void> {
  if (cmd !== 'launch') await f.engine.launch(V1);
  if (cmd === 'unstash') await f.engine.stash('nav2');
  f.backend.clearCalls();
}

export function perform(f: Fixture, cmd: Cmd): Promise<unknown> {
  const e = f.engine;
  const run: Record<Cmd, () => Promise<unknown>> = {
    launch: () => e.launch(V1),
    'refresh-last': () => e.refresh(V2),
    'refresh-first': () => e.refresh(V3),
    stash: () => e.stash('nav2'),
    unstash: () => e.unstash('nav2'),
    restore: () => e.restore('nav2', 'ros2'),
    remove: () => e.remove('nav2'),
  };
  return run[cmd]();
}

/** The mutating backend calls of a command's fault-free run, as [kind, nth-of-kind] pairs. */
export async function mutatingCalls(cmd: Cmd): Promise<Array<[CallKind, number]>> {
  const f = await fixture();
  try {
    await prepare(f, cmd);
    await perform(f, cmd);
    const seen = new Map<string, number>();
    return f.backend.trace().map((l) => {
      const kind = l.split(' ')[0]!.replace('!', '') as CallKind;
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
      return [kind, seen.get(kind)!];
    });
  } finally {
    await f.cleanup();
  }
}
