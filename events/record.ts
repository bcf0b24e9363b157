/**
 * The on-disk form of one journal record: one JSON object a line, sealed with a CRC-32.
 *
 * A line is `{"seq":N,"v":V,"type":"...","key":"...","data":{...},"crc":"xxxxxxxx"}\n`, where `crc`
 * is the CRC-32 (lower-case hex, 8 digits) of the line's bytes before `,"crc"`. The seal is a suffix
 * of fixed length, so a reader finds it without parsing and `jq` reads lines as they are.
 *
 * The same seal frames checkpoint files (`sealJson` / `unsealJson`), so both formats are verified
 * the same way.
 *
 * @example
 * ```ts
 * const line = encodeRecord({ seq: 1, v: 1, type: 'container.started', key: 'c1', data: { id: 'c1', at: 'T' } });
 * const back = decodeLine(Buffer.from(line.slice(0, -1))); // { ok: true, record: {...} }
 * ```
 */
import { crc32 } from 'node:zlib';
import type { JournalRecord } from './catalogue.ts';

/** `,"crc":"` + 8 hex digits + `"}`: the fixed-length seal at the end of every sealed JSON text. */
const SEAL_PREFIX = ',"crc":"';
export const SEAL_BYTES = SEAL_PREFIX.length + 8 + 2;

const NEWLINE = 0x0a;

const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case 8-digit hex of a CRC (a table beats toString + padStart on the append path). */
function hex8(n: number): string {
  return HEX2[n >>> 24] + HEX2[(n >>> 16) & 255] + HEX2[(n >>> 8) & 255] + HEX2[n & 255];
}

/**
 * Seals a JSON object text (`{...}`) with the CRC of everything before its closing brace.
 *
 * @example
 * ```ts
 * sealJson('{"a":1}'); // '{"a":1,"crc":"........"}'
 * ```
 */
export function sealJson(objectJson: string): string {
  const body = objectJson.slice(0, -1);
  return `${body}${SEAL_PREFIX}${hex8(crc32(body))}"}`;
}

/** Why a sealed text was rejected (for messages, never for control flow outside this module). */
export type SealFailure = 'short' | 'no-seal' | 'crc' | 'json' | 'shape';

/**
 * Verifies the seal of one sealed JSON text (without its newline) and parses it. The returned
 * object no longer has its `crc` key.
 *
 * @example
 * ```ts
 * const r = unsealJson(Buffer.from(sealJson('{"a":1}'))); // { ok: true, value: { a: 1 } }
 * ```
 */
export function unsealJson(bytes: Uint8Array): { ok: true; value: Record<string, unknown> } | { ok: false; why: SealFailure } {
  const n = bytes.length;
  if (n < SEAL_BYTES + 2) return { ok: false, why: 'short' };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, n);
  const sealAt = n - SEAL_BYTES;
  if (buf.toString('latin1', sealAt, sealAt + SEAL_PREFIX.length) !== SEAL_PREFIX || buf.toString('latin1', n - 2) !== '"}') {
    return { ok: false, why: 'no-seal' };
  }
  const want = buf.toString('latin1', sealAt + SEAL_PREFIX.length, n - 2);
  if (!/^[0-9a-f]{8}$/.test(want)) return { ok: false, why: 'no-seal' };
  if (hex8(crc32(buf.subarray(0, sealAt))) !== want) return { ok: false, why: 'crc' };
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch {
    return { ok: false, why: 'json' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, why: 'shape' };
  delete (value as Record<string, unknown>).crc;
  return { ok: true, value: value as Record<string, unknown> };
}

/**
 * Encodes one record as a sealed line, newline included. Key order is fixed (seq, v, type, key,
 * data) so the same record always gives the same bytes.
 *
 * @example
 * ```ts
 * encodeRecord({ seq: 7, v: 1, type: 'container.removed', key: 'c1', data: { id: 'c1', at: 'T' } });
 * // '{"seq":7,"v":1,"type":"container.removed","key":"c1","data":{"id":"c1","at":"T"},"crc":"…"}\n'
 * ```
 */
export function encodeRecord(r: { seq: number; v: number; type: string; key: string; data: unknown }): string {
  const json = JSON.stringify({ seq: r.seq, v: r.v, type: r.type, key: r.key, data: r.data });
  return `${sealJson(json)}\n`;
}

/** A line that failed to decode, with why. */
export interface BadLine {
  readonly ok: false;
  readonly why: SealFailure;
}

/**
 * Decodes one line (without its newline) into a record as stored (not upcast). Checks the seal
 * and the record's shape; sequence continuity and versions are the reader's business.
 *
 * @example
 * ```ts
 * const r = decodeLine(lineBytes);
 * if (r.ok) console.log(r.record.seq);
 * ```
 */
export function decodeLine(bytes: Uint8Array): { ok: true; record: JournalRecord } | BadLine {
  const u = unsealJson(bytes);
  if (!u.ok) return u;
  const o = u.value;
  if (
    !Number.isSafeInteger(o.seq) || (o.seq as number) < 1 ||
    !Number.isSafeInteger(o.v) || (o.v as number) < 0 ||
    typeof o.type !== 'string' || typeof o.key !== 'string' ||
    o.data === null || typeof o.data !== 'object'
  ) {
    return { ok: false, why: 'shape' };
  }
  return { ok: true, record: o as unknown as JournalRecord };
}

/** One line found in a buffer: its byte range (newline excluded) and whether it was terminated. */
export interface LineSpan {
  readonly start: number;
  readonly end: number;
  /** False for the last bytes of a buffer that do not end in a newline. */
  readonly terminated: boolean;
}

/**
 * Splits a buffer into lines. A final run of bytes without a newline is returned with
 * `terminated: false` (a torn write, when it is the end of the last segment).
 *
 * @example
 * ```ts
 * for (const span of lines(buf)) decodeLine(buf.subarray(span.start, span.end));
 * ```
 */
export function* lines(buf: Buffer): Generator<LineSpan> {
  let start = 0;
  while (start < buf.length) {
    const nl = buf.indexOf(NEWLINE, start);
    if (nl < 0) {
      yield { start, end: buf.length, terminated: false };
      return;
    }
    yield { start, end: nl, terminated: true };
    start = nl + 1;
  }
}
