/**
 * The timeline's shapes: what `model.ts` computes from a journal and `page.ts` draws. Positions
 * (`x`) are durable sequence numbers; the volatile journal's records sit between them by time.
 *
 * @example
 * ```ts
 * const undone = model.spans.filter((s: Span) => s.kind === 'op' && s.cls === 'undone');
 * ```
 */
import type { JournalDamage } from '../image.ts';
import type { Lane } from './lanes.ts';

export type SpanKind = 'op' | 'undo' | 'step' | 'life' | 'point' | 'band' | 'container';
export type SpanClass = 'done' | 'undone' | 'broken' | 'reconciled' | 'open' | 'ok' | 'failed' | 'probed' | 'exists' | 'gone' | 'orphan' | 'missing' | 'settled' | 'reconcile' | 'kept' | 'rm';

export interface Span {
  lane: number;
  readonly kind: SpanKind;
  cls: SpanClass;
  /** First and last position covered (inclusive). */
  readonly x0: number;
  readonly x1: number;
  readonly label: string;
  /** More words: the outcome, the error, what reconciliation observed. */
  readonly note: string;
  /** The records of the span (indexes into `records`), in order. */
  readonly recs: number[];
  /** A step's phase. */
  readonly phase?: 'do' | 'undo' | 'cleanup';
  /** The span this one undoes (an undo step: its do step; an undo phase: the step that failed), or -1. */
  readonly link: number;
  /** Shown by the failures-only filter. */
  fail: boolean;
}

export interface Mark {
  readonly x: number;
  readonly kind: 'reconcile' | 'gc' | 'damage';
  /** The record (-1: the damage, which is no record). */
  readonly rec: number;
  readonly label: string;
  /** A reconciliation that found something to do, a gc, damage: shown by the failures-only filter too. */
  readonly fail: boolean;
}

export interface RecordEntry {
  readonly seq: number;
  readonly x: number;
  readonly type: string;
  readonly key: string;
  readonly failure: boolean;
  readonly volatile: boolean;
  /** The span the record belongs to (-1: none). */
  span: number;
  /** One JSON line for the page: `{"t": text, "r": stored record, "u"?: upcast, "d": diff lines | null, "m": diff lines left out}`. */
  readonly line: string;
}

export interface TimelineHeader {
  readonly version: string;
  readonly journal: string;
  readonly records: number;
  readonly first: number | null;
  readonly last: number | null;
  readonly firstAt: string | null;
  readonly lastAt: string | null;
  readonly volatile: number;
  readonly damage: JournalDamage | null;
  readonly keptTorn: readonly string[];
  readonly ops: number;
  readonly failures: number;
}

export interface TimelineModel {
  readonly header: TimelineHeader;
  readonly lanes: Lane[];
  readonly spans: Span[];
  readonly marks: Mark[];
  /** Durable records in journal order, then the volatile journal's. */
  readonly records: RecordEntry[];
  /** The range of positions the page shows. */
  readonly xmin: number;
  readonly xmax: number;
}

/** At most this many changes of one record are kept (the rest are counted). */
export const MAX_CHANGES = 40;

/** A span while the model is being built: its lane by id (lanes are ordered once all are known). */
export type SpanDraft = Omit<Span, 'lane'> & { laneId: string };
