/**
 * The backend a simulated world runs on: the fake (in memory, fault plans built in) or a real
 * adapter (overlay) wrapped by `withFaults`. Each answers the harness's questions the same way:
 * which port the engine uses, how faults are armed, what a process crash and a host reboot do to
 * it, what its owned objects look like (for the invariants), and how to copy its state into a
 * crash image that a second world reconciles (invariant 4).
 *
 * - **fake**: a process crash changes nothing in the backend; a reboot is `fake.reboot()`;
 *   observation reads the fake's objects directly (no call recorded, no fault spent); images are
 *   `dump()` / `load()`.
 * - **overlay** (driver `overlayfs` by default): a process crash drops the adapter, and the next
 *   open creates a fresh one over the same root and run directory, so what survives is only what
 *   is on disk (mounts stay, as they do when a process dies). A reboot also unmounts everything
 *   under the root and wipes the adapter's run directory; the new adapter's start-up recovery
 *   must clean up. Observation goes through the port (`list`, `readFile` of `/etc/sdk-chain`) of
 *   the adapter underneath the fault wrapper. Images are `cp -ax` copies of the root (mounts are
 *   skipped; recovery mounts again) and `cp -a` of the run directory. Identities are drawn at
 *   random by the adapter, so invariant 4 compares them up to renaming.
 *
 * @example
 * ```ts
 * const sim = await createSimBackend('overlay', { seed: 1, dir });
 * await sim.open();                 // adapter up (start-up recovery runs)
 * sim.setFaultPlan({ rules: [{ call: 'copy', when: 'after', action: 'crash' }] });
 * const owned = await sim.observe('sim');
 * await sim.kill(); await sim.reboot(); await sim.open();
 * ```
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FaultPlan, FakeBackend, FakeImage, FakeObject } from '../backends/fake/index.ts';
import { createFakeBackend } from '../backends/fake/index.ts';
import { createOverlayBackend, type OverlayBackend } from '../backends/overlay/index.ts';
import { mountsUnder, unmount } from '../backends/overlay/mounts.ts';
import type { Backend, Identity, ObjectInfo, Space, Status, Tags } from '../backends/types.ts';
import { canonicalJson } from '../machines/index.ts';
import { withFaults, type FaultyBackend } from './faulty-backend.ts';
import { CHAIN_FILE } from './specs.ts';

const exec = promisify(execFile);

export type SimBackendKind = 'fake' | 'overlay';
export const SIM_BACKENDS: readonly SimBackendKind[] = ['fake', 'overlay'];

/** An owned object as the invariants see it. */
export interface SimObject {
  readonly space: Space;
  readonly name: string;
  readonly tags: Readonly<Record<string, string | undefined>> & Partial<Tags>;
  readonly status: Status;
  readonly identity: Identity;
  /** The lines of `/etc/sdk-chain` in its root (sdk layers and workshops; others may read empty). */
  readonly chain: readonly string[];
  /** Its root filesystem's content as one string (overlay: `/etc/sdk-chain`, the only file hooks write). */
  digest(): string;
}

/** A backend's part of a crash image. */
export type SimBackendImage = { readonly kind: 'fake'; readonly image: FakeImage } | { readonly kind: 'overlay'; readonly dir: string };

export interface SimBackend {
  readonly kind: SimBackendKind;
  /** The port the engine talks to (through the gate): faults applied, stable across restarts. */
  readonly port: Backend;
  /** Backend calls made through `port` so far (crash points are numbered by them). */
  readonly calls: number;
  /** Whether the backend draws identities at random (invariant 4 then compares them up to renaming). */
  readonly randomIdentities: boolean;
  setFaultPlan(plan: FaultPlan | null): void;
  /** Bring the adapter up (a real one: created afresh, its start-up recovery runs). Idempotent. */
  open(): Promise<void>;
  /** The process died: a real adapter is dropped (call after every in-flight call settled). */
  kill(): Promise<void>;
  /** A host reboot, after `kill`: transient state gone. */
  reboot(): Promise<void>;
  /** Owned objects by `space/name`, read without faults; synchronous when the backend allows it. */
  observe(owner: string): Promise<Map<string, SimObject>>;
  readonly observeSync?: (owner: string) => Map<string, SimObject>;
  /** The backend's state as one comparable string (invariant 4). Call after `open`. */
  canonical(owner: string): Promise<string>;
  /** Copy the backend's state into `dir` (a crash image). Call after `kill`. */
  image(dir: string): Promise<SimBackendImage>;
  /** What a reproduction directory records of the backend. */
  dump(owner: string): Promise<{ file: string; content: unknown }>;
  dispose(): Promise<void>;
}

export interface SimBackendOptions {
  readonly seed: number;
  /** The world's directory (a real backend keeps its root under it). */
  readonly dir: string;
  readonly image?: SimBackendImage;
}

export async function createSimBackend(kind: SimBackendKind, opts: SimBackendOptions): Promise<SimBackend> {
  if (kind === 'fake') return new FakeSim(opts);
  return new OverlaySim(opts);
}

// ---- fake ----------------------------------------------------------------------------------------

export function chainOfText(text: string | undefined): string[] {
  return (text ?? '').split('\n').filter(Boolean);
}

function fromFake(o: FakeObject): SimObject {
  return {
    space: o.space, name: o.name, tags: o.tags, status: o.status, identity: o.identity,
    get chain() {
      return chainOfText(o.files[CHAIN_FILE]?.content);
    },
    digest: () => canonicalJson(o.files),
  };
}

class FakeSim implements SimBackend {
  readonly kind = 'fake' as const;
  readonly randomIdentities = false;
  readonly fake: FakeBackend;
  constructor(opts: SimBackendOptions) {
    this.fake = createFakeBackend({ seed: opts.seed });
    if (opts.image?.kind === 'fake') this.fake.load(opts.image.image);
  }
  get port(): Backend {
    return this.fake;
  }
  get calls(): number {
    return this.fake.calls.length;
  }
  setFaultPlan(plan: FaultPlan | null): void {
    this.fake.setFaultPlan(plan);
  }
  async open(): Promise<void> {}
  async kill(): Promise<void> {}
  async reboot(): Promise<void> {
    this.fake.reboot();
  }
  readonly observeSync = (owner: string): Map<string, SimObject> =>
    new Map(this.fake.objects().filter((o) => o.tags['owner'] === owner).map((o) => [`${o.space}/${o.name}`, fromFake(o)]));
  async observe(owner: string): Promise<Map<string, SimObject>> {
    return this.observeSync(owner);
  }
  async canonical(): Promise<string> {
    return canonicalJson(this.fake.dump());
  }
  async image(): Promise<SimBackendImage> {
    return { kind: 'fake', image: this.fake.dump() };
  }
  async dump(): Promise<{ file: string; content: unknown }> {
    return { file: 'fake.json', content: this.fake.dump() };
  }
  async dispose(): Promise<void> {}
}

// ---- overlay -------------------------------------------------------------------------------------

/** Unmount every mount at or under `dir`, deepest first. */
export async function releaseMountsUnder(dir: string): Promise<void> {
  for (const m of await mountsUnder(dir)) await unmount(m);
  if ((await mountsUnder(dir)).length) throw new Error(`simulation: mounts under ${dir} would not go away`);
}

/** Delete (SIGKILL) every runc container whose state the store on `runDir` keeps (`<runDir>/runc`). */
async function endContainers(runDir: string): Promise<void> {
  const root = join(runDir, 'runc');
  let ids: string[] = [];
  try {
    ids = fs.readdirSync(root);
  } catch {
    return; // no runtime, or nothing ever started
  }
  for (const id of ids) await exec('runc', ['--root', root, 'delete', '--force', id]).catch(() => undefined);
}

/** Kinds whose `/etc/sdk-chain` the invariants read (8: sdk layers and workshops; 3: workshops). */
const READ_CHAIN = new Set(['sdk', 'workshop']);

class OverlaySim implements SimBackend {
  readonly kind = 'overlay' as const;
  readonly randomIdentities = true;
  readonly root: string;
  readonly runDir: string;
  private adapter: OverlayBackend | null = null;
  readonly faulty: FaultyBackend;
  /**
   * Chain files of layers, by identity and op tag: a layer is never written after it is made, and
   * a copy or refresh-copy onto it changes its op tag (and a new object its uuid), so the cache
   * spares a mount per layer per check without hiding a change made through the port.
   */
  private readonly layerChains = new Map<string, string>();

  constructor(private readonly opts: SimBackendOptions) {
    this.root = join(opts.dir, 'overlay');
    this.runDir = join(opts.dir, 'overlay-run');
    // The engine sees one port for the world's life; the adapter under it is replaced at restarts.
    const forward = <K extends keyof Backend>(k: K) => ((...args: unknown[]) => (this.live[k] as (...a: unknown[]) => unknown)(...args)) as Backend[K];
    const indirect: Backend = {
      kind: 'overlay',
      defaultBase: 'busybox',
      ensureProjects: forward('ensureProjects'), listBases: forward('listBases'), baseFingerprint: forward('baseFingerprint'), create: forward('create'), copy: forward('copy'),
      remove: forward('remove'), start: forward('start'), stop: forward('stop'), exec: forward('exec'), spawn: forward('spawn'), inspect: forward('inspect'),
      list: forward('list'), readFile: forward('readFile'), diskSpace: forward('diskSpace'), usage: forward('usage'), close: async () => {},
    };
    this.faulty = withFaults(indirect);
  }

  private get live(): OverlayBackend {
    if (!this.adapter) throw new Error('simulation: the overlay adapter is not open (the process is dead)');
    return this.adapter;
  }
  get port(): Backend {
    return this.faulty;
  }
  get calls(): number {
    return this.faulty.calls;
  }
  setFaultPlan(plan: FaultPlan | null): void {
    this.faulty.setFaultPlan(plan);
  }

  async open(): Promise<void> {
    if (this.adapter) return;
    if (this.opts.image?.kind === 'overlay' && !fs.existsSync(this.root)) {
      const from = this.opts.image.dir;
      await exec('cp', ['-a', join(from, 'overlay'), this.root]);
      await exec('cp', ['-a', join(from, 'overlay-run'), this.runDir]);
    }
    // The specs name base `busybox`: the overlay's generated default base, under that name.
    this.adapter = await createOverlayBackend({ root: this.root, runDir: this.runDir, driver: 'overlayfs', defaultBase: 'busybox' });
  }

  async kill(): Promise<void> {
    const a = this.adapter;
    this.adapter = null;
    await a?.close();
  }

  async reboot(): Promise<void> {
    // A reboot ends every container: as root with runc, started overlay instances are detached
    // containers that would otherwise outlive the world (the process may be dead already: no adapter).
    await this.kill();
    await endContainers(this.runDir);
    await releaseMountsUnder(this.root);
    fs.rmSync(this.runDir, { recursive: true, force: true });
  }

  async observe(owner: string): Promise<Map<string, SimObject>> {
    const a = this.live;
    const out = new Map<string, SimObject>();
    for (const info of await a.list(owner)) {
      const kind = info.tags.kind;
      let text = '';
      if (READ_CHAIN.has(kind)) {
        const cacheKey = `${info.ref.space}/${info.ref.name}@${info.identity.uuid}@${info.tags.op}`;
        const cached = info.ref.space === 'layers' ? this.layerChains.get(cacheKey) : undefined;
        if (cached !== undefined) text = cached;
        else {
          const f = await a.readFile(info.ref, CHAIN_FILE);
          text = f?.type === 'file' ? (f.content ?? '') : '';
          if (info.ref.space === 'layers') this.layerChains.set(cacheKey, text);
        }
      }
      out.set(`${info.ref.space}/${info.ref.name}`, fromInfo(info, text));
    }
    return out;
  }

  async canonical(owner: string): Promise<string> {
    const objects = [...(await this.observe(owner)).values()].map((o) => ({ space: o.space, name: o.name, tags: o.tags, status: o.status, identity: o.identity, chain: o.chain }));
    return canonicalJson(objects);
  }

  async image(dir: string): Promise<SimBackendImage> {
    // -x: mounts (running roots, views) are not copied; their mount points come over empty.
    if (fs.existsSync(this.root)) await exec('cp', ['-ax', this.root, join(dir, 'overlay')]);
    if (fs.existsSync(this.runDir)) await exec('cp', ['-a', this.runDir, join(dir, 'overlay-run')]);
    else fs.mkdirSync(join(dir, 'overlay-run'));
    return { kind: 'overlay', dir };
  }

  async dump(owner: string): Promise<{ file: string; content: unknown }> {
    const objects = this.adapter ? [...(await this.observe(owner)).values()].map((o) => ({ space: o.space, name: o.name, tags: o.tags, status: o.status, identity: o.identity, chain: o.chain })) : null;
    return { file: 'overlay.json', content: { root: this.root, runDir: this.runDir, objects } };
  }

  async dispose(): Promise<void> {
    await this.kill();
    await endContainers(this.runDir);
    await releaseMountsUnder(this.opts.dir);
  }
}

function fromInfo(info: ObjectInfo, chainText: string): SimObject {
  const chain = chainOfText(chainText);
  return { space: info.ref.space, name: info.ref.name, tags: info.tags, status: info.status, identity: info.identity, chain, digest: () => chainText };
}

/**
 * Rename identities (MACs, uuids) to their order of first appearance, so two runs that differ only
 * in which identities a real backend drew compare equal. One renamer per side; feed both sides the
 * same things in the same order.
 */
export function identityRenamer(): (text: string) => string {
  const seen = new Map<string, string>();
  const re = /\b(?:[0-9a-f]{2}:){5}[0-9a-f]{2}\b|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
  return (text) =>
    text.replace(re, (m) => {
      let v = seen.get(m);
      if (!v) seen.set(m, (v = `<id${seen.size}>`));
      return v;
    });
}
