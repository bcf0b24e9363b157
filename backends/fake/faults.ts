/**
 * Fault plans: which fake backend calls fail or "crash", and when. A plan is plain JSON so the
 * simulation harness can write it into a reproduction directory and replay the exact same faults.
 *
 * - A **rule** picks calls by kind (`'*'` for any), optionally by a substring of the target
 *   (`space/name`, the owner for `list`/`ensureProjects`, the base for `baseFingerprint`) and by
 *   `nth`: the 1-based count of calls *matching this rule's kind and target*, counted from when the
 *   plan was set. Rules are tried in order; the first that fires wins. `once` (default true) spends
 *   the rule after it fires; with `once: false` it fires on every match from the `nth` on.
 * - **random** faults fire on each eligible call with `probability`, drawn from their own PRNG seeded
 *   by `seed` (separate from the fake's identity PRNG, so a plan never changes which MACs objects
 *   get). Eligible: the calls listed in `calls`, by default every mutating call (read-only calls,
 *   `inspect`, `list`, `readFile`, `listBases`, `baseFingerprint`, only when listed). Rules take
 *   precedence.
 * - `fail` + `before`: the call throws `BackendError(code)` and changes nothing. `fail` + `after`:
 *   the effect is applied, then the call throws (the caller sees a failure that in fact happened).
 *   `crash` throws `SimulatedCrash` before or after applying the effect. An `after` fault on a call
 *   whose effect itself failed is spent, and the call's own error propagates.
 *
 * @example
 * ```ts
 * const plan: FaultPlan = {
 *   rules: [{ call: 'copy', target: 'stash-', when: 'after', action: 'crash' }],
 *   random: { seed: 7, probability: 0.05, actions: ['fail-before'], codes: ['NO_SPACE'] },
 * };
 * backend.setFaultPlan(plan);
 * ```
 */
import type { BackendErrorCode, CallKind } from '../types.ts';
import { Prng } from './prng.ts';

export interface FaultRule {
  readonly call: CallKind | '*';
  /** 1-based count of calls matching this rule (kind and target), counted from when the plan was set. */
  readonly nth?: number;
  /** Substring of the call's target (`space/name`; the owner for `list`/`ensureProjects`; the base for `baseFingerprint`). */
  readonly target?: string;
  readonly when: 'before' | 'after';
  readonly action: 'fail' | 'crash';
  /** The error code of a `fail` (default `INTERNAL`). */
  readonly code?: BackendErrorCode;
  /** Spend the rule after it fires once (default true). */
  readonly once?: boolean;
}

export type RandomAction = 'fail-before' | 'fail-after' | 'crash-before' | 'crash-after';

export interface RandomFaults {
  readonly seed: number;
  /** Chance in [0, 1] that an eligible call gets a fault. */
  readonly probability: number;
  /** Default: all four. */
  readonly actions?: readonly RandomAction[];
  /** Codes for `fail` actions, picked at random (default `['INTERNAL']`). */
  readonly codes?: readonly BackendErrorCode[];
  /** Eligible calls (default: every call except inspect, list, readFile, listBases, baseFingerprint). */
  readonly calls?: readonly CallKind[];
}

export interface FaultPlan {
  readonly rules?: readonly FaultRule[];
  readonly random?: RandomFaults;
}

/** A fault chosen for one call. */
export interface Fault {
  readonly when: 'before' | 'after';
  readonly action: 'fail' | 'crash';
  readonly code: BackendErrorCode;
  /** `rule N` (0-based index in `rules`) or `random`. */
  readonly by: string;
}

export const READ_ONLY_CALLS: ReadonlySet<CallKind> = new Set<CallKind>(['inspect', 'list', 'readFile', 'listBases', 'baseFingerprint']);

const ALL_ACTIONS: readonly RandomAction[] = ['fail-before', 'fail-after', 'crash-before', 'crash-after'];

/** Check a plan's shape, so a hand-written reproduction file fails loudly rather than silently. */
export function validateFaultPlan(plan: FaultPlan): string | null {
  for (const [i, r] of (plan.rules ?? []).entries()) {
    if (r.when !== 'before' && r.when !== 'after') return `rules[${i}].when must be "before" or "after"`;
    if (r.action !== 'fail' && r.action !== 'crash') return `rules[${i}].action must be "fail" or "crash"`;
    if (r.nth !== undefined && !(Number.isInteger(r.nth) && r.nth >= 1)) return `rules[${i}].nth must be an integer >= 1`;
  }
  const rnd = plan.random;
  if (rnd) {
    if (!(rnd.probability >= 0 && rnd.probability <= 1)) return 'random.probability must be in [0, 1]';
    if (!Number.isFinite(rnd.seed)) return 'random.seed must be a number';
    if (rnd.actions?.some((a) => !ALL_ACTIONS.includes(a))) return `random.actions must be among ${ALL_ACTIONS.join(', ')}`;
    if (rnd.actions?.length === 0 || rnd.codes?.length === 0) return 'random.actions and random.codes must not be empty when given';
  }
  return null;
}

/** Decides, call by call, which fault (if any) a plan injects. Holds the plan's counters. */
export class FaultInjector {
  private readonly matches: number[];
  private readonly spent: boolean[];
  private readonly rng: Prng | null;

  constructor(readonly plan: FaultPlan) {
    const n = plan.rules?.length ?? 0;
    this.matches = new Array<number>(n).fill(0);
    this.spent = new Array<boolean>(n).fill(false);
    this.rng = plan.random ? new Prng(plan.random.seed) : null;
  }

  /** The fault for this call, or null. Advances the counters (call it exactly once per call). */
  decide(kind: CallKind, target: string): Fault | null {
    const rules = this.plan.rules ?? [];
    let chosen: Fault | null = null;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.call !== '*' && r.call !== kind) continue;
      if (r.target !== undefined && !target.includes(r.target)) continue;
      // Every matching call counts, even once a rule before this one has fired, so `nth` stays
      // "the nth such call" whatever other rules do.
      const count = ++this.matches[i]!;
      if (chosen || this.spent[i]) continue;
      const once = r.once ?? true;
      if (r.nth !== undefined && (once ? count !== r.nth : count < r.nth)) continue;
      if (once) this.spent[i] = true;
      chosen = { when: r.when, action: r.action, code: r.code ?? 'INTERNAL', by: `rule ${i}` };
    }
    if (chosen) return chosen;
    const rnd = this.plan.random;
    if (!rnd || !this.rng) return null;
    const eligible = rnd.calls ? rnd.calls.includes(kind) : !READ_ONLY_CALLS.has(kind);
    if (!eligible) return null;
    // Draw for every eligible call, fault or not, so the sequence depends only on the call sequence.
    const roll = this.rng.next();
    const actions = rnd.actions ?? ALL_ACTIONS;
    const codes = rnd.codes ?? ['INTERNAL'];
    const action = actions[this.rng.below(actions.length)]!;
    const code = codes[this.rng.below(codes.length)]!;
    if (roll >= rnd.probability) return null;
    const [what, when] = action.split('-') as ['fail' | 'crash', 'before' | 'after'];
    return { when, action: what, code, by: 'random' };
  }
}
