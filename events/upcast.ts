/**
 * Upcasting: records written by an older atelier are brought to the current schema when read,
 * one version step at a time, so the fold only ever sees current shapes.
 *
 * An upcaster is registered for `(type, fromVersion)` and maps the `data` of version `fromVersion`
 * to version `fromVersion + 1`. When a type's shape changes: bump `EVENT_VERSIONS[type]` in
 * `catalogue.ts` and add an upcaster here to `UPCASTERS`. No real event type has one yet (all are
 * at version 1); tests inject their own table through `openJournal({ upcasters })`.
 *
 * A record whose version is newer than the current one was written by a newer atelier: it is a
 * `JOURNAL_VERSION` error telling the user to upgrade, never a guess.
 *
 * @example
 * ```ts
 * const table = createUpcasters([
 *   { type: 'op.finished', from: 0, up: (d) => ({ ...d, outcome: d.ok ? 'done' : 'broken' }) },
 * ]);
 * const rec = upcastRecord({ seq: 3, v: 0, type: 'op.finished', key: 'w', data: { ok: true } }, table);
 * ```
 */
import { AtelierError } from '../errors.ts';
import { EVENT_VERSIONS } from './catalogue.ts';
import type { JournalRecord } from './catalogue.ts';

/** Maps the data of one version to the data of the next. Must be pure (replay calls it again). */
export type Upcaster = (data: Record<string, any>) => Record<string, any>;

export interface UpcasterEntry {
  readonly type: string;
  /** The version `up` reads; it returns version `from + 1`. */
  readonly from: number;
  readonly up: Upcaster;
}

/** Upcasters keyed by `type@from`. Build one with `createUpcasters`. */
export type UpcasterTable = ReadonlyMap<string, Upcaster>;

/**
 * Builds an upcaster table; a duplicate `(type, from)` is a programming error.
 *
 * @example
 * ```ts
 * const table = createUpcasters([{ type: 'op.phase', from: 1, up: (d) => ({ ...d, reason: d.why }) }]);
 * ```
 */
export function createUpcasters(entries: readonly UpcasterEntry[]): UpcasterTable {
  const table = new Map<string, Upcaster>();
  for (const e of entries) {
    const k = `${e.type}@${e.from}`;
    if (table.has(k)) throw new Error(`two upcasters registered for ${e.type} v${e.from}`);
    table.set(k, e.up);
  }
  return table;
}

/** The upcasters of this atelier release (none yet: every event type is at version 1). */
export const UPCASTERS: UpcasterTable = createUpcasters([]);

/** Where a record was read, for error messages. */
export interface RecordOrigin {
  readonly segment: string;
  readonly offset: number;
}

/**
 * Brings a stored record to its type's current version. Returns the same object when it is
 * already current.
 *
 * @throws AtelierError `JOURNAL_VERSION` when the record (or its type) is newer than this atelier,
 *   or when an older version has no upcaster.
 * @example
 * ```ts
 * const current = upcastRecord(stored, UPCASTERS, { segment: '/state/journal/000000000001.jsonl', offset: 0 });
 * ```
 */
export function upcastRecord(
  record: JournalRecord,
  table: UpcasterTable = UPCASTERS,
  origin?: RecordOrigin,
  versions: Readonly<Record<string, number>> = EVENT_VERSIONS,
): JournalRecord {
  const current = Object.prototype.hasOwnProperty.call(versions, record.type) ? versions[record.type] : undefined;
  const where = origin ? ` in ${origin.segment} at byte ${origin.offset}` : '';
  const details = { seq: record.seq, type: record.type, v: record.v, current: current ?? null, ...origin };
  if (current === undefined) {
    throw new AtelierError(
      'JOURNAL_VERSION',
      `journal record ${record.seq}${where} has event type "${record.type}", which this atelier does not know: ` +
        'it was written by a newer atelier; upgrade atelier to read this state directory',
      details,
    );
  }
  if (record.v === current) return record;
  if (record.v > current) {
    throw new AtelierError(
      'JOURNAL_VERSION',
      `journal record ${record.seq}${where} is "${record.type}" version ${record.v}, but this atelier reads up to ` +
        `version ${current}: it was written by a newer atelier; upgrade atelier to read this state directory`,
      details,
    );
  }
  let data = record.data as Record<string, any>;
  for (let v = record.v; v < current; v++) {
    const up = table.get(`${record.type}@${v}`);
    if (!up) {
      throw new AtelierError(
        'JOURNAL_VERSION',
        `journal record ${record.seq}${where} is "${record.type}" version ${record.v} and this atelier has no ` +
          `upcaster from version ${v}: report this as an atelier bug, and use the atelier release that wrote it`,
        details,
      );
    }
    data = up(data);
  }
  return { ...record, v: current, data } as JournalRecord;
}
