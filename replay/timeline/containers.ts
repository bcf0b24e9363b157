/**
 * The volatile journal on the timeline: each transient container (`atelier run`) a span on its
 * own lane, from `container.created` to `container.removed` (or to the end when it is still
 * there), grouped under the workshop it was run from. The volatile journal's sequence numbers are
 * its own, so its records are placed on the durable axis by time: after the last durable record
 * at or before each one's time, spread evenly in the gap when several fall in one.
 *
 * @example
 * ```ts
 * const xend = addContainers(image.volatile, { ats, records, lastX }, book, plans, push);
 * ```
 */
import type { JournalRecord } from '../../events/catalogue.ts';
import { describeRecord, type Plans } from '../describe.ts';
import type { LaneBook } from './lanes.ts';
import type { RecordEntry, SpanDraft } from './types.ts';

/**
 * Add the volatile records to `durable.records` and a span per container; returns the last
 * position any of them takes (at least `durable.lastX`).
 */
export function addContainers(
  volatile: readonly JournalRecord[],
  durable: { readonly ats: readonly string[]; readonly records: RecordEntry[]; readonly lastX: number },
  book: LaneBook,
  plans: Plans,
  push: (d: SpanDraft) => number,
): number {
  const { records } = durable;
  const placed = placeByTime(durable.ats, volatile.map((v) => (v.data as { at?: string }).at ?? ''), records);
  const open = new Map<string, { x0: number; recs: number[]; lane: string; keep: boolean; source: string }>();
  let xend = durable.lastX;
  const span = (id: string, c: { x0: number; recs: number[]; lane: string; keep: boolean; source: string }, x1: number, how: string) =>
    push({ laneId: c.lane, kind: 'container', cls: c.keep ? 'kept' : 'rm', x0: c.x0, x1, label: id, note: `container ${id} from ${c.source}${c.keep ? ' (kept after its script)' : ' (--rm)'}: ${how}`, recs: c.recs, link: -1, fail: false });
  for (const [k, v] of volatile.entries()) {
    const i = records.length;
    const x = placed[k]!;
    xend = Math.max(xend, x);
    const d = v.data as { id: string; source?: { space: string; name: string }; keep?: boolean };
    const text = v.type === 'container.created' ? describeRecord(v, plans) : `${d.id} ${v.type.slice('container.'.length)}`;
    records.push({ seq: v.seq, x, type: v.type, key: v.key, failure: false, volatile: true, span: -1, line: JSON.stringify({ t: text, r: v, d: null, m: 0 }) });
    if (v.type === 'container.created' && d.source) {
      const src = `object:${d.source.space}/${d.source.name}`;
      open.set(d.id, { x0: x, recs: [i], lane: book.container(d.id, book.has(src) ? book.groupOf(src) : null), keep: d.keep === true, source: `${d.source.space}/${d.source.name}` });
      continue;
    }
    const c = open.get(d.id);
    c?.recs.push(i);
    if (c && v.type === 'container.removed') {
      open.delete(d.id);
      span(d.id, c, x, 'created, then removed');
    }
  }
  for (const [id, c] of open) span(id, c, xend, 'still there when the volatile journal ends');
  return xend;
}

/** Positions for records at times `vats` between the durable records at times `ats`. */
function placeByTime(ats: readonly string[], vats: readonly string[], records: readonly { x: number }[]): number[] {
  const gap = vats.map((at) => {
    let lo = 0;
    let hi = ats.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ats[mid]! <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  });
  const count = new Map<number, number>();
  for (const g of gap) count.set(g, (count.get(g) ?? 0) + 1);
  const seen = new Map<number, number>();
  return gap.map((g) => {
    const n = count.get(g)!;
    const k = (seen.get(g) ?? 0) + 1;
    seen.set(g, k);
    const base = g >= 0 ? records[g]!.x : (records[0]?.x ?? 1) - 1;
    return base + k / (n + 1);
  });
}
