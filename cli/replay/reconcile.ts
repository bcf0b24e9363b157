/**
 * `atelier replay reconcile --inventory FILE`: what reconciliation would decide for this journal and
 * that backend inventory (`atelier inventory --json > FILE`), touching neither.
 *
 * It runs the real code path, not a model of it: the journal (durable and volatile, checkpoints
 * included) is copied into a fresh temporary directory, a fake backend is loaded with the
 * inventory's objects, an engine is opened on the copy with that backend, a fixed clock and fixed
 * ids, and reconciles exactly as a start does (a torn tail is cut first, in the copy). What it
 * journaled is the answer: each decision in words (`effect.observed` with its row of the
 * reconciliation table), the backend calls it made (removals, re-creations, undo steps...), and the
 * workshops' statuses before and after. The temporary directory is removed afterwards, even on
 * failure; nothing else is written (the journal's directory, its checkpoints and the state
 * directory are only read), no lock but the throwaway engine's own on the copy is taken, and no
 * backend (nor atelierd) is reached.
 *
 * What the inventory cannot say, the replay assumes, and says so:
 * - Hooks (`exec` effects an op rolls on to) are not run: the inventory holds no files. They are
 *   assumed to succeed when the port would let them run (a running instance), and marked `assumed`.
 * - Objects the replay makes get identities the fake invents (the real backend would give others).
 * - A transient container's source (which pins it, port rule 5) is taken from the volatile journal,
 *   else from its `source` tag.
 * - The bases `create` accepts are the ones the journal's plans and the inventory's objects name.
 *
 * @example
 * ```sh
 * atelier inventory --json > inv.json                       # on the host
 * atelier replay reconcile --inventory inv.json --journal /tmp/from-alice/state
 * atelier replay reconcile --inventory inv.json --journal /tmp/crash-image --json | jq '.decisions[].text'
 * ```
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Subscription } from 'rxjs';
import { createFakeBackend, type FakeBackend, type FakeImage, type FakeObject } from '../../backends/fake/index.ts';
import { callText, refText } from '../../backends/fake/calls.ts';
import { BackendError, type Backend, type CopyRequest, type CreateRequest, type ExecRequest, type ExecResult, type ObjectInfo, type ObjectRef } from '../../backends/types.ts';
import type { JournalRecord } from '../../events/catalogue.ts';
import type { JournalEvent, ReconcileReport } from '../../engine/api.ts';
import { openEngineImpl } from '../../engine/engine.ts';
import { sequentialIds, steppingClock } from '../../engine/ids.ts';
import { AtelierError, type AtelierErrorCode } from '../../machines/errors.ts';
import { evolveVolatile, initialVolatile, objectKey, type FoldState, type VolatileState } from '../../machines/index.ts';
import type { Context } from '../context.ts';
import { readInventory, type Inventory } from '../inventory.ts';
import { describeRecord, remember, type Plans } from '../../replay/describe.ts';
import { damageLines, imageFor, journalFacts, recordLine } from './events.ts';
import type { JournalDamage, JournalImage } from '../../replay/image.ts';
import { walk } from '../../replay/walk.ts';

/** One backend call the replayed reconciliation made that would change something on the host. */
export interface ReplayAction {
  /** `remove`, `create`, `copy`, `start`, `stop`, `exec`. */
  readonly call: string;
  /** The call in the fake's trace form: `remove workshops/nav2-1a2b3c4d`, `copy! layers/x -> workshops/y`. */
  readonly text: string;
  readonly ok: boolean;
  /** The backend error code, when it failed. */
  readonly code?: string;
  /** A hook the replay did not run (the inventory holds no files): assumed to succeed. */
  readonly assumed?: boolean;
}

/** A decision: a record the reconciliation journaled, the journal it went to, and the record in words. */
export type ReplayDecision = JournalEvent & { readonly text: string };

export interface ReplayReconcileResult {
  /** Where the replay's clock started (each reading moves it one millisecond). */
  readonly at: string;
  readonly owner: string;
  /** The torn tail reconciliation cut first (in the copy), if any. */
  readonly torn: JournalDamage | null;
  readonly decisions: ReplayDecision[];
  readonly actions: ReplayAction[];
  /** Each workshop's status before and after (null: absent), its last error after, and whether reconciliation set it. */
  readonly workshops: Record<string, { before: string | null; after: string | null; lastError: { op: string; code: string; message: string } | null; newError: boolean }>;
  /** Each transient container's status before and after (null: absent). */
  readonly containers: Record<string, { before: string | null; after: string | null }>;
  readonly report: ReconcileReport;
}

/** The ids the replay's engine draws from (reconciliation draws none today: they only keep it deterministic). */
export const replayIds = (): ReturnType<typeof sequentialIds> => sequentialIds(1);

/** The latest `at` the journal holds (durable or volatile), plus one millisecond: the replay's default clock start. */
export function defaultReplayStart(image: JournalImage): string {
  let latest = Number.NaN;
  for (const r of [...image.records, ...image.volatile]) {
    const t = Date.parse(String((r.data as { at?: unknown }).at ?? ''));
    if (!Number.isNaN(t) && !(t <= latest)) latest = t;
  }
  return new Date(Number.isNaN(latest) ? 0 : latest + 1).toISOString();
}

/** Whose objects the journal's plans tag (the first `owner` tag found), if any. */
export function journalOwner(image: JournalImage): string | undefined {
  for (const r of image.records) {
    if (r.type !== 'op.started') continue;
    const plan = (r.data as { plan?: { do?: readonly unknown[]; cleanup?: readonly unknown[] } }).plan;
    for (const s of [...(plan?.do ?? []), ...(plan?.cleanup ?? [])]) {
      const owner = (s as { effect?: { tags?: { owner?: unknown } } })?.effect?.tags?.owner;
      if (typeof owner === 'string' && owner !== '') return owner;
    }
  }
  return undefined;
}

/** The bases the journal's plans create from (and the inventory's objects descend from). */
function basesNamed(image: JournalImage, inventory: Inventory): string[] {
  const bases = new Set<string>();
  const visit = (steps: unknown): void => {
    if (!Array.isArray(steps)) return;
    for (const s of steps as { effect?: { type?: unknown; base?: unknown }; undo?: unknown }[]) {
      if (s?.effect?.type === 'create' && typeof s.effect.base === 'string') bases.add(s.effect.base);
      visit(s?.undo);
    }
  };
  for (const r of image.records) {
    if (r.type === 'op.started') {
      const plan = (r.data as { plan?: { do?: unknown; cleanup?: unknown } }).plan;
      visit(plan?.do);
      visit(plan?.cleanup);
    }
    if (r.type === 'op.phase') visit((r.data as { steps?: unknown }).steps);
  }
  for (const o of inventory.objects) if (o.base !== undefined) bases.add(o.base);
  return [...bases].sort();
}

/** The volatile state the image's volatile journal folds to. */
function volatileOf(image: JournalImage): VolatileState {
  const vs = initialVolatile();
  for (const r of image.volatile) evolveVolatile(vs, r);
  return vs;
}

/** A fake backend's image holding the inventory's objects (no files: the inventory has none). */
function fakeImageOf(inventory: Inventory, volatile: VolatileState): FakeImage {
  const containers = new Map(Object.values(volatile.containers).map((c) => [objectKey(c.ref), c.source]));
  const byName = (name: string): ObjectRef | undefined =>
    inventory.objects.find((o) => o.ref.space === 'workshops' && o.ref.name === name)?.ref ?? inventory.objects.find((o) => o.ref.name === name)?.ref;
  const objects = inventory.objects.map((o): FakeObject => {
    const tags = Object.fromEntries(Object.entries(o.tags).filter((e): e is [string, string] => typeof e[1] === 'string'));
    const from = o.tags.kind === 'container' ? (containers.get(objectKey(o.ref)) ?? (o.tags.source ? byName(o.tags.source) : undefined)) : undefined;
    return {
      space: o.ref.space,
      name: o.ref.name,
      tags,
      status: o.status,
      identity: { ...o.identity },
      ...(o.base !== undefined ? { base: o.base } : {}),
      ...(from ? { from: { space: from.space, name: from.name } } : {}),
      files: {},
    };
  });
  // The PRNG state a fake seeded with 1 starts from: identities the replay invents are reproducible.
  const rng = createFakeBackend({ seed: 1 }).dump().rng;
  return { format: 'atelier-fake/1', rng, projects: [inventory.owner], objects, scratches: {} };
}

/**
 * The backend the replayed engine talks to: a fake holding the inventory, recording every call that
 * would change something, and assuming hooks succeed (it has no files to run them on).
 */
export class ReplayBackend implements Backend {
  readonly actions: ReplayAction[] = [];
  constructor(
    private readonly fake: FakeBackend,
    readonly kind: string,
  ) {}
  get defaultBase(): string {
    return this.fake.defaultBase;
  }
  /** Run a call that changes something on the fake, and note it (in the fake's trace form). */
  private async track<T>(fields: Parameters<typeof callText>[0], fn: () => Promise<T>): Promise<T> {
    const text = callText(fields);
    try {
      const r = await fn();
      this.actions.push({ call: fields.kind, text, ok: true });
      return r;
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      this.actions.push({ call: fields.kind, text, ok: false, ...(typeof code === 'string' ? { code } : {}) });
      throw e;
    }
  }
  ensureProjects(owner: string): Promise<void> {
    return this.fake.ensureProjects(owner);
  }
  listBases(): Promise<string[]> {
    return this.fake.listBases();
  }
  baseFingerprint(base: string): Promise<string> {
    return this.fake.baseFingerprint(base);
  }
  create(req: CreateRequest): Promise<ObjectInfo> {
    const source = 'base' in req.source ? `base:${req.source.base}` : refText(req.source.object);
    return this.track({ kind: 'create', target: refText(req.target), source, ...(req.refresh ? { refresh: true } : {}) }, () => this.fake.create(req));
  }
  copy(req: CopyRequest): Promise<ObjectInfo> {
    return this.track({ kind: 'copy', source: refText(req.source), target: refText(req.target), ...(req.refresh ? { refresh: true } : {}) }, () => this.fake.copy(req));
  }
  remove(ref: ObjectRef): Promise<void> {
    return this.track({ kind: 'remove', ref: refText(ref) }, () => this.fake.remove(ref));
  }
  start(ref: ObjectRef): Promise<void> {
    return this.track({ kind: 'start', ref: refText(ref) }, () => this.fake.start(ref));
  }
  stop(ref: ObjectRef): Promise<void> {
    return this.track({ kind: 'stop', ref: refText(ref) }, () => this.fake.stop(ref));
  }
  /** The port's preconditions are checked (the object, owned, a running instance); the hook itself is assumed to succeed. */
  async exec(ref: ObjectRef, _req: ExecRequest): Promise<ExecResult> {
    const text = callText({ kind: 'exec', ref: refText(ref) });
    const info = await this.fake.inspect(ref);
    let err: BackendError | null = null;
    if (!info) err = new BackendError('NOT_FOUND', `cannot exec in ${ref.space}/${ref.name}: no such object in the inventory`);
    else if (!info.tags.owner) err = new BackendError('NOT_OWNED', `will not exec in ${ref.space}/${ref.name}: it carries no owner tag`);
    else if (ref.space === 'layers') err = new BackendError('INVALID', `${ref.space}/${ref.name} is a layer; hooks run in instances`);
    else if (info.status !== 'running') err = new BackendError('INVALID', `instance ${ref.space}/${ref.name} is not running; start it first`);
    if (err) {
      this.actions.push({ call: 'exec', text, ok: false, code: err.code });
      throw err;
    }
    this.actions.push({ call: 'exec', text, ok: true, assumed: true });
    return { exitCode: 0, stdout: '', stderr: '' };
  }
  /** Reconciliation never starts processes: an offline replay has nothing to run them in. */
  async spawn(ref: ObjectRef): Promise<never> {
    throw new BackendError('INVALID', `cannot start a process in ${ref.space}/${ref.name}: an offline replay has no instances to run it in`);
  }
  inspect(ref: ObjectRef) {
    return this.fake.inspect(ref);
  }
  list(owner: string) {
    return this.fake.list(owner);
  }
  readFile(ref: ObjectRef, path: string) {
    return this.fake.readFile(ref, path);
  }
  diskSpace() {
    return this.fake.diskSpace();
  }
  usage(owner: string) {
    return this.fake.usage(owner);
  }
  close(): Promise<void> {
    return this.fake.close();
  }
}

/** The backend a replay of `image` talks to: a fake holding `inventory`'s objects (see `ReplayBackend`). */
export function replayBackend(image: JournalImage, inventory: Inventory): ReplayBackend {
  const bases = basesNamed(image, inventory);
  const fake = createFakeBackend(bases.length ? { bases, defaultBase: bases[0]! } : {});
  fake.load(fakeImageOf(inventory, volatileOf(image)));
  return new ReplayBackend(fake, inventory.backend);
}

/** Copy what an engine opens (segments, torn pieces kept aside, checkpoints, the volatile journal) into `tmp`. */
async function copyImage(image: JournalImage, tmp: string): Promise<{ stateDir: string; runDir: string }> {
  const stateDir = join(tmp, 'state');
  const runDir = join(tmp, 'run');
  // The reserve is only room kept for a full disk: not worth copying.
  await cp(image.dir, join(stateDir, 'journal'), { recursive: true, filter: (src) => basename(src) !== 'reserve.prealloc' });
  const checkpoints = join(dirname(image.dir), 'checkpoints');
  if (basename(image.dir) === 'journal' && existsSync(checkpoints)) await cp(checkpoints, join(stateDir, 'checkpoints'), { recursive: true });
  if (image.volatileDir) await cp(image.volatileDir, join(runDir, 'volatile'), { recursive: true });
  return { stateDir, runDir };
}

/**
 * Replay reconciliation of `image` against `inventory` on copies (see the header). `at` starts the
 * clock (default `defaultReplayStart`).
 *
 * @throws AtelierError `JOURNAL_CORRUPT` / `JOURNAL_VERSION` for a journal a start would refuse;
 *   `INVALID_ARGUMENT` for an inventory of another owner than the journal's, or a bad `at`.
 */
export async function replayReconcile(image: JournalImage, inventory: Inventory, opts: { at?: string } = {}): Promise<ReplayReconcileResult> {
  if (image.damage && image.damage.kind !== 'torn') {
    throw new AtelierError(
      (image.damage.code ?? 'JOURNAL_CORRUPT') as AtelierErrorCode,
      `cannot replay reconciliation: a start would refuse this journal too (${image.damage.message}); \`atelier replay --journal DIR\` shows the records before the damage`,
      { journal: image.dir, seq: image.damage.seq },
    );
  }
  const owner = journalOwner(image);
  if (owner !== undefined && owner !== inventory.owner) {
    throw new AtelierError(
      'INVALID_ARGUMENT',
      `the inventory lists the objects of ${JSON.stringify(inventory.owner)}, but the journal's are ${JSON.stringify(owner)}'s: take the inventory as ${owner} on the host (\`atelier inventory --json > FILE\` run by that user)`,
      { inventoryOwner: inventory.owner, journalOwner: owner },
    );
  }
  const at = opts.at ?? defaultReplayStart(image);
  if (Number.isNaN(Date.parse(at)) || !/^\d{4}-\d\d-\d\dT/.test(at)) {
    throw new AtelierError('INVALID_ARGUMENT', `--at ${JSON.stringify(at)} is not a time: give an ISO 8601 time such as 2026-12-05T12:00:00.000Z`, { option: 'at' });
  }
  const start = new Date(Date.parse(at)).toISOString();

  // What the records before say: the plans (to name steps), the statuses before.
  const plans: Plans = new Map();
  const before = walk(image, (r) => remember(r, plans));
  const vbefore = volatileOf(image);

  const backend = replayBackend(image, inventory);

  const tmp = await mkdtemp(join(tmpdir(), 'atelier-replay-reconcile-'));
  try {
    const { stateDir, runDir } = await copyImage(image, tmp);
    const engine = await openEngineImpl({
      stateDir,
      runDir,
      backend,
      owner: inventory.owner,
      clock: steppingClock(start),
      ids: replayIds(),
      // Opened without the start-up pass, so that every record it journals is seen; then the same
      // pass a start makes. Synced inline: a throwaway copy needs no preallocated segment nor reserve.
      reconcile: false,
      syncInline: true,
      minFreeBytes: 0,
      checkpointEvery: Number.MAX_SAFE_INTEGER,
    }).catch((e: unknown) => {
      throw inOriginal(e, join(stateDir, 'journal'), image.dir);
    });
    const seen: JournalEvent[] = [];
    let sub: Subscription | undefined;
    let report: ReconcileReport;
    let after: FoldState;
    let vafter: VolatileState;
    try {
      sub = engine.events$.subscribe((r) => seen.push(r));
      report = await engine.reconcile();
      after = engine.folded;
      vafter = engine.volatileState;
    } catch (e) {
      // Dropped as a dead process would be (no checkpoint): the copy is thrown away anyway.
      await engine.crash();
      throw inOriginal(e, join(stateDir, 'journal'), image.dir);
    } finally {
      sub?.unsubscribe();
    }
    await engine.close();

    const decisions = seen.map((r): ReplayDecision => ({ ...r, text: describeRecord(r as JournalRecord, plans) }));
    const workshops: ReplayReconcileResult['workshops'] = {};
    for (const name of [...new Set([...Object.keys(before.workshops), ...Object.keys(after.workshops)])].sort()) {
      const a = after.workshops[name];
      const lastError = a?.lastError ?? null;
      const newError = lastError !== null && JSON.stringify(lastError) !== JSON.stringify(before.workshops[name]?.lastError ?? null);
      workshops[name] = { before: before.workshops[name]?.status ?? null, after: a?.status ?? null, lastError, newError };
    }
    const containers: ReplayReconcileResult['containers'] = {};
    for (const id of [...new Set([...Object.keys(vbefore.containers), ...Object.keys(vafter.containers)])].sort()) {
      containers[id] = { before: vbefore.containers[id]?.status ?? null, after: vafter.containers[id]?.status ?? null };
    }
    return { at: start, owner: inventory.owner, torn: image.damage, decisions, actions: backend.actions, workshops, containers, report };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** An error the engine raised about the copy, naming the original journal instead of the copy. */
function inOriginal(e: unknown, copy: string, original: string): unknown {
  if (!(e instanceof AtelierError) || !e.message.includes(copy)) return e;
  return new AtelierError(e.code, e.message.split(copy).join(original), { ...e.info }, { cause: e });
}

/** `atelier replay reconcile --inventory FILE [--journal DIR]`. */
export async function replayReconcileCommand(ctx: Context, opts: { journal?: string; inventory: string; at?: string }): Promise<number> {
  const image = await imageFor(ctx, opts);
  const inventory = await readInventory(opts.inventory);
  const result = await replayReconcile(image, inventory, opts.at === undefined ? {} : { at: opts.at });
  const inv = { file: opts.inventory, backend: inventory.backend, owner: inventory.owner, at: inventory.at, atelier: inventory.atelier, objects: inventory.objects.length };
  if (ctx.out.json) {
    ctx.out.result({ ...journalFacts(image), inventory: inv, ...result }, () => '');
    return 0;
  }
  const text: string[] = [];
  text.push(`journal: ${image.dir}, ${image.records.length} records`);
  text.push(...damageLines(image));
  if (result.torn) text.push('  (reconciliation runs after cutting the torn tail, as a start does: in a copy, the journal itself is untouched)');
  text.push(`inventory: ${opts.inventory}: ${inv.objects} objects of ${inv.owner} on the ${inv.backend} backend${inv.at ? `, taken ${inv.at}` : ''}`);
  for (const d of inventory.droppedAtOpen ?? []) text.push(`  (left out: ${d.space}/${d.name}, a transient container the overlay store removes when next opened)`);
  text.push('', `reconciliation would journal (clock from ${result.at}):`);
  for (const d of result.decisions) text.push(`${d.journal === 'volatile' ? 'v' : ' '}${recordLine(d, d.text)}`);
  if (result.decisions.some((d) => d.journal === 'volatile')) text.push('  (v: in the volatile journal of transient containers, which numbers its records on its own)');
  text.push('', 'and would ask the backend to:');
  if (result.actions.length === 0) text.push('  nothing (no call that changes anything)');
  for (const a of result.actions) text.push(`  ${a.text}${a.ok ? '' : ` (fails: ${a.code ?? 'error'})`}${a.assumed ? ' (the hook is not run here: assumed to succeed)' : ''}`);
  text.push('', 'workshops:');
  if (Object.keys(result.workshops).length === 0) text.push('  none');
  for (const [name, w] of Object.entries(result.workshops)) {
    const change = w.before === w.after ? `${w.after ?? 'absent'} (unchanged)` : `${w.before ?? 'absent'} -> ${w.after ?? 'absent'}`;
    text.push(`  ${name}: ${change}${w.lastError && w.newError ? `, last error ${w.lastError.code}: ${w.lastError.message}` : ''}`);
  }
  for (const [id, c] of Object.entries(result.containers)) text.push(`  container ${id}: ${c.before ?? 'absent'} -> ${c.after ?? 'absent'}`);
  text.push('', `pending ops ${result.report.pending}, orphans removed ${result.report.orphans}, objects missing ${result.report.missing}; nothing was written (a copy in a temporary directory, since removed)`);
  ctx.out.result({}, () => text.join('\n'));
  return 0;
}
