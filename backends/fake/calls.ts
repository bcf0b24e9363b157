/**
 * The fake's call log: every port call, in order, with its outcome, and a compact one-line form
 * for trace tables. Engine tests compare `trace()` against expected plans, so the line format is a
 * contract:
 *
 * | call | line |
 * | --- | --- |
 * | create from a base | `create workshops/nav2-1a2b3c4d` |
 * | create refresh | `create! workshops/nav2-1a2b3c4d` |
 * | transient container | `create layers/ros2-0123456789abcdef -> workshops/c-x1` |
 * | copy | `copy workshops/nav2-1a2b3c4d -> layers/stash-nav2-1a2b3c4d` |
 * | refresh-copy | `copy! layers/stash-nav2-1a2b3c4d -> workshops/nav2-1a2b3c4d` |
 * | remove, start, stop, exec | `remove layers/x`, `start workshops/x`, `stop workshops/x`, `exec workshops/x` |
 * | read-only (only with `readOnly: true`) | `inspect workshops/x`, `readFile workshops/x /etc/motd`, `list alice`, `ensureProjects alice`, `listBases`, `baseFingerprint busybox` |
 *
 * A call that failed ends in ` !CODE` (` !UNAVAILABLE`, ` !INTERNAL`, ...) and one that crashed in
 * ` !CRASH`, unless `outcome: false`.
 *
 * @example
 * ```ts
 * backend.trace(); // ['create workshops/nav2-1a2b3c4d', 'exec workshops/nav2-1a2b3c4d', 'copy workshops/nav2-1a2b3c4d -> layers/ros2-0123456789abcdef']
 * ```
 */
import type { CallKind, ObjectRef } from '../types.ts';
import { READ_ONLY_CALLS } from './faults.ts';

/** One port call as the fake recorded it. Refs are written `space/name`. */
export interface CallRecord {
  /** 1-based position since the fake was made (or `clearCalls()`). */
  readonly n: number;
  readonly kind: CallKind;
  /** remove, start, stop, exec, inspect, readFile: the object. */
  readonly ref?: string;
  /** copy: the source; create: the source object of a transient container, or `base:NAME`. */
  readonly source?: string;
  /** create, copy: the target. */
  readonly target?: string;
  readonly refresh?: boolean;
  /** copy with `resetIdentity` (not shown in `text`). */
  readonly resetIdentity?: boolean;
  /** baseFingerprint: the base. */
  readonly base?: string;
  /** list, ensureProjects. */
  readonly owner?: string;
  /** readFile. */
  readonly path?: string;
  ok: boolean;
  /** The error code when `ok` is false (`SIMULATED_CRASH` for a crash). */
  code?: string;
  /** The fault the plan injected into this call, if any. */
  fault?: 'fail-before' | 'fail-after' | 'crash-before' | 'crash-after';
  /** The compact form (without outcome), e.g. `copy workshops/x -> layers/y`. */
  readonly text: string;
}

export interface TraceOptions {
  /** Include read-only calls (inspect, list, readFile, listBases, baseFingerprint, ensureProjects). Default false. */
  readonly readOnly?: boolean;
  /** Suffix failed calls with ` !CODE` and crashed ones with ` !CRASH`. Default true. */
  readonly outcome?: boolean;
}

export function refText(ref: ObjectRef): string {
  return `${ref.space}/${ref.name}`;
}

/** The compact form of a call, from its fields. */
export function callText(r: Omit<CallRecord, 'text' | 'n' | 'ok'>): string {
  const bang = r.refresh ? '!' : '';
  switch (r.kind) {
    case 'create':
      return r.source && !r.source.startsWith('base:') ? `create ${r.source} -> ${r.target}` : `create${bang} ${r.target}`;
    case 'copy':
      return `copy${bang} ${r.source} -> ${r.target}`;
    case 'readFile':
      return `readFile ${r.ref} ${r.path}`;
    case 'list':
    case 'ensureProjects':
      return `${r.kind} ${r.owner}`;
    case 'listBases':
      return 'listBases';
    case 'baseFingerprint':
      return `baseFingerprint ${r.base}`;
    default:
      return `${r.kind} ${r.ref}`;
  }
}

/** ensureProjects does not change objects, so trace tables leave it out with the read-only calls. */
const TRACE_HIDDEN: ReadonlySet<CallKind> = new Set<CallKind>([...READ_ONLY_CALLS, 'ensureProjects']);

export function traceLines(calls: readonly CallRecord[], opts: TraceOptions = {}): string[] {
  const outcome = opts.outcome ?? true;
  return calls
    .filter((c) => opts.readOnly || !TRACE_HIDDEN.has(c.kind))
    .map((c) => (c.ok || !outcome ? c.text : `${c.text} !${c.code === 'SIMULATED_CRASH' ? 'CRASH' : c.code}`));
}
