/**
 * The event catalogue: every record atelier journals. The events themselves are the domain's
 * (`machines/events.ts`: what `decide` returns and `evolve` applies); this file adds what the
 * journal needs: each type's current schema version, the key, and the record's shape on disk.
 *
 * Records of older versions are brought to the current shape when folded (`events/upcast.ts`); a
 * record of a newer version is a `JOURNAL_VERSION` error.
 *
 * Versions: `op.phase`, `op.finished`, `effect.observed`, `object.missing` and `object.settled`
 * are at 2: they carry the decisions that version 1 left the fold to re-derive (the undo phase's
 * steps; the shape, status, last error and garbage an op's end leaves; the reconciliation table's
 * row and the failure it concluded; what a lost or settled object does to its workshop).
 *
 * @example
 * ```ts
 * const input: EventInput = { type: 'engine.reconciled', key: 'engine', data: { at: '2026-11-23T00:00:00.000Z', pending: 0, orphans: 0, missing: 0 } };
 * await journal.append([input]);
 * ```
 */
import { AtelierError } from '../machines/errors.ts';
import type { DomainEvent, DomainEventOf, DomainEventType, KeyedEvent } from '../machines/events.ts';

export type { Effect, ObjectDescriptor, Observation, OpKind, Phase, Plan, PlanStep, ProbeDecision, SdkLayer, SdkSpec, StashShape, WorkshopShape, WorkshopSpec } from '../machines/types.ts';

export type AtelierEvent = DomainEvent;
export type EventType = DomainEventType;
export type EventOf<T extends EventType> = DomainEventOf<T>;

/** Current schema version of each event type. Bump it and add an upcaster when a shape changes. */
export const EVENT_VERSIONS: { readonly [T in EventType]: number } = {
  'op.started': 1,
  'effect.requested': 1,
  'effect.succeeded': 1,
  'effect.failed': 1,
  'effect.observed': 2,
  'op.phase': 2,
  'op.finished': 2,
  'object.orphan-removed': 1,
  'object.missing': 2,
  'object.settled': 2,
  'engine.reconciled': 1,
  'cache.evicting': 1,
  'cache.evicted': 1,
  'container.created': 1,
  'container.started': 1,
  'container.removed': 1,
};

/** What a caller appends: the journal assigns `seq` and `v`. `key` is the entity (workshop name, container id, `engine`). */
export type EventInput = KeyedEvent;

/**
 * One journal record, as stored (one JSON object a line):
 * `{"seq":12,"v":1,"type":"op.started","key":"nav2","data":{...},"crc":"1a2b3c4d"}`.
 * `crc` is the CRC-32 (hex) of the line's bytes before `,"crc"`, so `jq` reads records as they are.
 * A record read from disk may be of an older version: its `data` is then that version's shape
 * until `upcastRecord` has brought it up to date.
 */
export type JournalRecord = AtelierEvent & { readonly seq: number; readonly v: number; readonly key: string };

/** Where a record was read, for error messages. */
export interface RecordOrigin {
  readonly segment: string;
  readonly offset: number;
}

/**
 * Refuses a record this atelier cannot read: of an unknown type, or of a newer version than it
 * knows (both mean a newer atelier wrote it). Older versions pass: they are upcast when folded.
 *
 * @throws AtelierError `JOURNAL_VERSION`
 */
export function checkVersion(record: { readonly seq: number; readonly type: string; readonly v: number }, origin?: RecordOrigin, versions: Readonly<Record<string, number>> = EVENT_VERSIONS): void {
  const current = Object.prototype.hasOwnProperty.call(versions, record.type) ? versions[record.type] : undefined;
  if (current !== undefined && record.v <= current) return;
  const where = origin ? ` in ${origin.segment} at byte ${origin.offset}` : '';
  const details = { seq: record.seq, type: record.type, v: record.v, current: current ?? null, ...origin };
  if (current === undefined) {
    throw new AtelierError(
      'JOURNAL_VERSION',
      `journal record ${record.seq}${where} has event type "${record.type}", which this atelier does not know: ` + 'it was written by a newer atelier; upgrade atelier to read this state directory',
      details,
    );
  }
  throw new AtelierError(
    'JOURNAL_VERSION',
    `journal record ${record.seq}${where} is "${record.type}" version ${record.v}, but this atelier reads up to ` + `version ${current}: it was written by a newer atelier; upgrade atelier to read this state directory`,
    details,
  );
}

