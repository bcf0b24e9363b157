/**
 * The model: what each workshop should be, kept beside the engine and updated by the outcome of
 * each command. It predicts which commands the engine must reject (and with which code), which
 * outcomes a command may have given how it ended, and what the workshop looks like after each
 * outcome; invariants compare it with the engine and the backend.
 *
 * Outcomes follow the engine's decided semantics: a crash is an abort. An op interrupted before
 * its pivot is undone (launch: gone; refresh, stash, restore: back as before, stash dropped); past
 * its pivot (unstash after its stop, remove, a refresh or restore in clean-up) it rolls forward.
 * A step that fails three times in undo, clean-up or past the pivot ends the op `broken`: the
 * workshop is marked broken and its root filesystem is unknown until a refresh or unstash repairs
 * it, so invariants 3 and 6 exempt broken workshops.
 *
 * @example
 * ```ts
 * const m = new Model();
 * m.rejection({ kind: 'stash', workshop: 'alpha' }); // { code: 'NOT_FOUND' }
 * ```
 */
import type { Identity } from '../backends/types.ts';
import type { OpKind } from '../events/catalogue.ts';
import { chainOf, DEFAULT_VERSION, specOf, WORKSHOPS, type SpecVersion } from './specs.ts';

export type Outcome = 'done' | 'undone' | 'broken';

/** What a workshop's root filesystem and layers should be. */
export interface Content {
  readonly version: SpecVersion;
  /** `name:version` lines of its SDK layers. */
  readonly sdks: readonly string[];
  readonly hashes: readonly string[];
  /** What `/etc/sdk-chain` of the instance holds (a restore makes it a prefix of `sdks`); null: unknown. */
  readonly chain: readonly string[] | null;
  /** Digest of the instance's root filesystem when last observed; null: unknown. */
  readonly digest: string | null;
}

export interface MWorkshop {
  status: 'ready' | 'broken';
  identity: Identity | null;
  content: Content;
  /** The stash a `stash` command made (refresh and restore stashes never outlive their op). */
  stash: Content | null;
  /** The last spec version launched or refreshed to (what "unchanged" refreshes again). */
  version: SpecVersion;
}

/** A command as the model sees it. */
export type Cmd =
  | { kind: 'launch'; workshop: string; version: SpecVersion }
  | { kind: 'refresh'; workshop: string; version: SpecVersion }
  | { kind: 'stash' | 'unstash' | 'remove' | 'start' | 'stop'; workshop: string }
  | { kind: 'restore'; workshop: string; sdk: string }
  | { kind: 'run'; workshop: string }
  | { kind: 'gc' };

/** How a command ended, as the harness saw it. */
/** `backend`: the backend's own error, not the engine's (a call made before the op started failed). */
export type Ending = { how: 'ok' } | { how: 'error'; code: string; cause?: string; op?: string; backend?: true } | { how: 'crash' };

export function contentOf(version: SpecVersion, workshop: string): Content {
  const spec = specOf(workshop, version);
  const sdks = chainOf(spec);
  return { version, sdks, hashes: spec.sdks.map((s) => s.hash), chain: sdks, digest: null };
}

export class Model {
  readonly workshops = new Map<string, MWorkshop>();

  /** The rejection the engine must answer with before journaling anything, or null. */
  rejection(cmd: Cmd): { code: string } | null {
    if (cmd.kind === 'gc') return null;
    const ws = this.workshops.get(cmd.workshop);
    if (cmd.kind === 'launch') return ws ? { code: 'ALREADY_EXISTS' } : null;
    if (!ws) return { code: 'NOT_FOUND' };
    switch (cmd.kind) {
      case 'run':
        return ws.status === 'ready' ? null : { code: 'NOT_FOUND' };
      case 'refresh':
        return ws.stash ? { code: 'FAILED_PRECONDITION' } : null;
      case 'remove':
        return null;
      case 'stash':
        return ws.status === 'broken' || ws.stash ? { code: 'FAILED_PRECONDITION' } : null;
      case 'unstash':
        return ws.stash ? null : { code: 'FAILED_PRECONDITION' };
      case 'start':
      case 'stop':
        return ws.status === 'broken' ? { code: 'FAILED_PRECONDITION' } : null;
      case 'restore':
        if (ws.status === 'broken' || ws.stash) return { code: 'FAILED_PRECONDITION' };
        return ws.content.sdks.some((l) => l.startsWith(`${cmd.sdk}:`)) ? null : { code: 'NOT_FOUND' };
    }
  }

  /**
   * Outcomes an accepted op may end with, given how its command ended. `reached` lists the phases
   * the journal shows it entered (and `end` once its last do step took effect: an abort after that
   * changes nothing, the op finishes); `finishedBeforeCrash` is its outcome if that was durable first.
   */
  allowed(kind: OpKind, ending: Ending, reached: ReadonlySet<string>, finishedBeforeCrash?: Outcome): Outcome[] {
    const all = this.allowedBy(kind, ending, reached, finishedBeforeCrash);
    return ending.how === 'crash' && !finishedBeforeCrash && reached.has('end') && !all.includes('done') ? [...all, 'done'] : all;
  }

  private allowedBy(kind: OpKind, ending: Ending, reached: ReadonlySet<string>, finishedBeforeCrash?: Outcome): Outcome[] {
    if (ending.how === 'ok') return ['done'];
    if (ending.how === 'error') {
      if (ending.code === 'BROKEN') return ['broken'];
      // NO_SPACE: a step failed for lack of space (an injected NO_SPACE), undone like any failure.
      if (ending.code === 'OP_FAILED' || ending.code === 'ABORTED' || ending.code === 'NO_SPACE') return kind === 'remove' ? [] : ['undone'];
      return [];
    }
    if (finishedBeforeCrash) return [finishedBeforeCrash];
    switch (kind) {
      case 'launch':
      case 'stash':
        return ['undone', 'broken'];
      case 'refresh':
      case 'restore':
        return reached.has('cleanup') ? ['done', 'broken'] : ['undone', 'broken'];
      case 'unstash':
        return ['done', 'undone', 'broken'];
      case 'remove':
        return ['done', 'broken'];
      case 'start':
      case 'stop':
        // One step, nothing to compensate: a crash before its outcome is an interruption (undone).
        return ['undone'];
    }
  }

  /** Apply an accepted op's outcome. `before` is the workshop as it was (null for a launch). */
  apply(cmd: Exclude<Cmd, { kind: 'run' | 'gc' }>, outcome: Outcome): void {
    const name = cmd.workshop;
    const ws = this.workshops.get(name);
    if (outcome === 'broken') {
      const target = ws ?? { status: 'broken' as const, identity: null, content: contentOf(cmd.kind === 'launch' ? cmd.version : DEFAULT_VERSION, name), stash: null, version: DEFAULT_VERSION };
      target.status = 'broken';
      // What the root filesystem holds is unknown now; which layers exist is whatever the fold says.
      target.content = { ...target.content, chain: null, digest: null };
      if (cmd.kind === 'launch') target.version = cmd.version;
      this.workshops.set(name, target);
      return;
    }
    if (outcome === 'undone') {
      if (cmd.kind === 'launch') this.workshops.delete(name);
      else if (ws) {
        // A failed refresh or restore returns the workshop as it was: the stash they made is dropped.
        // A failed refresh of a broken workshop returns its stashed root filesystem, marked ready
        // unless a layer it lists was lost (the runner's `settle` decides that from the fold).
        ws.status = 'ready';
      }
      return;
    }
    switch (cmd.kind) {
      case 'launch':
        this.workshops.set(name, { status: 'ready', identity: null, content: contentOf(cmd.version, name), stash: null, version: cmd.version });
        return;
      case 'refresh':
        ws!.status = 'ready';
        ws!.content = contentOf(cmd.version, name);
        ws!.stash = null;
        ws!.version = cmd.version;
        return;
      case 'stash':
        ws!.stash = { ...ws!.content };
        return;
      case 'unstash':
        ws!.status = 'ready';
        ws!.content = { ...ws!.stash! };
        ws!.version = ws!.stash!.version;
        ws!.stash = null;
        return;
      case 'restore': {
        const i = ws!.content.sdks.findIndex((l) => l.startsWith(`${cmd.sdk}:`));
        ws!.content = { ...ws!.content, chain: ws!.content.sdks.slice(0, i + 1), digest: null };
        return;
      }
      case 'remove':
        this.workshops.delete(name);
        return;
      case 'start':
      case 'stop':
        return; // the wanted status changes; the content does not
    }
  }

  /** The spec version a refresh starts from (the last one launched or refreshed to). */
  versionOf(workshop: string): SpecVersion {
    return this.workshops.get(workshop)?.version ?? DEFAULT_VERSION;
  }

  clone(): Model {
    const m = new Model();
    for (const [k, v] of this.workshops) m.workshops.set(k, { ...v, content: { ...v.content }, stash: v.stash ? { ...v.stash } : null });
    return m;
  }
}

export const ALL_WORKSHOPS = Object.keys(WORKSHOPS);
