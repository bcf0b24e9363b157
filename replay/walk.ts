/**
 * Walking a journal image: each record upcast as this atelier reads it (with the state before it)
 * and folded by the domain core's `evolve`, exactly as an engine's start-up folds it. The replay
 * commands are all walks: `at` stops at a sequence number, `diff` keeps a copy at one and goes on
 * to another, `why` and `bisect` look at every record, `html` keeps what each record changed.
 *
 * The walk never decides anything: it only applies what the records say (the decisions they carry).
 *
 * @example
 * ```ts
 * const { changes } = await streamDiff(dir, 12, 40); // what changed between records 12 and 40
 * walk(image, (r, s) => { if (r.type === 'op.finished') console.log(r.seq, s.workshops); });
 * ```
 */
import { Immer } from 'immer';
import diff from 'microdiff';
import type { JournalRecord } from '../events/catalogue.ts';
import { upcastRecord } from '../events/upcast.ts';
import { evolve, initialState, type FoldState } from '../machines/index.ts';
import { AtelierError } from '../machines/errors.ts';
import { scanJournal, type JournalImage, type ScanResult } from './image.ts';

/** Visit each record (upcast) with the state right after it; return `false` to stop. */
export function walk(image: JournalImage, visit: (record: JournalRecord, after: FoldState) => boolean | void, until = Number.MAX_SAFE_INTEGER): FoldState {
  const state = initialState();
  for (const stored of image.records) {
    if (stored.seq > until) break;
    const r = upcastRecord(stored, state);
    evolve(state, r);
    if (visit(r, state) === false) break;
  }
  return state;
}

/**
 * Walk a journal directory as it is read, record by record, without holding the records: what the
 * commands that need only the state (`at`, `diff`, `bisect`, the listing) use, so a million-record
 * journal costs one replay. Records past `until` are read (to find the journal's end and any
 * damage) but not folded.
 */
export async function streamWalk(dir: string, visit: (record: JournalRecord, after: FoldState) => boolean | void, until = Number.MAX_SAFE_INTEGER): Promise<{ state: FoldState; scan: ScanResult }> {
  const state = initialState();
  let going = true;
  const scan = await scanJournal(dir, (stored) => {
    if (!going || stored.seq > until) return;
    const r = upcastRecord(stored, state);
    evolve(state, r);
    if (visit(r, state) === false) going = false;
  });
  return { state, scan };
}

/** Check that `seq` names a point of a journal that ends at `last`. */
export function checkSeqIn(scan: ScanResult, seq: number, what = 'sequence number'): void {
  if (seq <= scan.last) return;
  const damage = scan.damage ? ` (the journal is damaged at record ${scan.damage.seq}: ${scan.damage.kind})` : '';
  throw new AtelierError('NOT_FOUND', `${what} ${seq} is past the journal's last record ${scan.last}${damage}: give a number from 0 to ${scan.last}`, { seq, last: scan.last });
}

/** The last sequence number of the image (0 when empty). */
export const lastSeq = (image: JournalImage): number => image.records.at(-1)?.seq ?? 0;

/** One difference between two states: a path into the state, and the values on each side. */
export interface Change {
  readonly op: 'add' | 'remove' | 'change';
  /** The path into the folded state, dotted: `workshops.nav2.status`. */
  readonly path: string;
  readonly from?: unknown;
  readonly to?: unknown;
}

const OPS = { CREATE: 'add', REMOVE: 'remove', CHANGE: 'change' } as const;

/** A structural diff of two folded states (microdiff), sorted by path so equal inputs give equal output. */
export function diffStates(a: object, b: object): Change[] {
  const out = diff(a as Record<string, unknown>, b as Record<string, unknown>).map((d): Change => {
    const op = OPS[d.type];
    const path = d.path.join('.');
    if (d.type === 'CREATE') return { op, path, to: d.value };
    if (d.type === 'REMOVE') return { op, path, from: d.oldValue };
    return { op, path, from: d.oldValue, to: d.value };
  });
  return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

/**
 * The state at `a` and at `b`, and the changes from one to the other, as the journal is read (see
 * `streamWalk`): one fold, a copy of the state at the lower point.
 */
export async function streamDiff(dir: string, a: number, b: number, visit: (r: JournalRecord) => void = () => undefined): Promise<{ from: FoldState; to: FoldState; changes: Change[]; scan: ScanResult }> {
  const [lo, hi] = a <= b ? [a, b] : [b, a];
  let low: FoldState | null = lo === 0 ? initialState() : null;
  const { state: high, scan } = await streamWalk(
    dir,
    (r, s) => {
      if (r.seq === lo) low = structuredClone(s);
      visit(r);
    },
    hi,
  );
  checkSeqIn(scan, a);
  checkSeqIn(scan, b);
  const [from, to] = a <= b ? [low!, high] : [high, low!];
  return { from, to, changes: diffStates({ ...from, seq: 0 }, { ...to, seq: 0 }), scan };
}

/**
 * Visit each record with the changes it made to the state. The states are built with immer so that
 * each record's state shares everything it did not touch with the one before: only the entities
 * whose reference changed are diffed, so this costs per record what the record touched, not the
 * size of the state.
 */
export function walkChanges(image: JournalImage, visit: (record: JournalRecord, changes: Change[], after: FoldState) => void): FoldState {
  let state = initialState();
  for (const stored of image.records) {
    const before = state;
    // Upcast against the plain state before the record, outside `produce`: an upcaster that copies
    // part of the state into the record (version 1's `op.finished` takes the workshop's shape)
    // would otherwise keep draft proxies that immer revokes when `produce` returns.
    const r = upcastRecord(stored, before);
    state = unfrozen.produce(before, (draft) => {
      evolve(draft as FoldState, r);
    });
    visit(r, changesBetween(before, state), state);
  }
  return state;
}

// Its own immer: freezing every state of a long walk costs more than the walk, and the global
// setting is the engine's (its states are frozen).
const unfrozen = new Immer({ autoFreeze: false });

const COLLECTIONS = ['workshops', 'ops', 'objects'] as const;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The changes between two versions of one entity that share what did not change (immer's
 * structural sharing): subtrees with the same reference are skipped (an op's plan, on each of its
 * steps), so the cost follows what changed; the rest is microdiff's. microdiff itself cannot skip by
 * reference: it compares every leaf.
 */
function diffShared(x: unknown, y: unknown, path: string, out: Change[]): void {
  if (x === y) return;
  if (!isPlainObject(x) || !isPlainObject(y)) {
    if (typeof x === 'object' && x !== null && typeof y === 'object' && y !== null && Array.isArray(x) === Array.isArray(y)) {
      for (const d of diffStates(x, y)) out.push({ ...d, path: `${path}.${d.path}` });
    } else out.push({ op: 'change', path, from: x, to: y });
    return;
  }
  for (const k of Object.keys(x)) {
    if (!(k in y)) out.push({ op: 'remove', path: `${path}.${k}`, from: x[k] });
    else diffShared(x[k], y[k], `${path}.${k}`, out);
  }
  for (const k of Object.keys(y)) if (!(k in x)) out.push({ op: 'add', path: `${path}.${k}`, to: y[k] });
}

/** The changes between two states that share untouched entities (see `walkChanges`). */
export function changesBetween(before: FoldState, after: FoldState): Change[] {
  const out: Change[] = [];
  for (const c of COLLECTIONS) {
    const x = before[c] as Record<string, unknown>;
    const y = after[c] as Record<string, unknown>;
    if (x === y) continue;
    const mine: Change[] = [];
    diffShared(x, y, c, mine);
    out.push(...mine.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)));
  }
  return out;
}

/** An op in progress in a word, for diffs: its whole plan would drown the line. */
function opSummary(path: string, x: unknown): string | null {
  if (!/^ops\.[^.]+$/.test(path) || typeof x !== 'object' || x === null) return null;
  const o = x as { kind?: string; workshop?: string; phase?: string; step?: number; plan?: { do?: unknown[] } };
  return `${o.kind} on ${o.workshop} (${o.plan?.do?.length ?? '?'} do steps), at ${o.phase}#${o.step}`;
}

/** One line per change: `~ workshops.nav2.status: "busy" -> "ready"`. */
export function formatChanges(changes: readonly Change[]): string[] {
  const v = (x: unknown, path = '') => {
    const op = opSummary(path, x);
    if (op !== null) return op;
    const s = JSON.stringify(x);
    return s === undefined ? 'undefined' : s.length > 160 ? `${s.slice(0, 157)}...` : s;
  };
  return changes.map((c) => (c.op === 'add' ? `+ ${c.path}: ${v(c.to, c.path)}` : c.op === 'remove' ? `- ${c.path}: ${v(c.from, c.path)}` : `~ ${c.path}: ${v(c.from)} -> ${v(c.to)}`));
}
