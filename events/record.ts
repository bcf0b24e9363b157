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
import { EVENT_VERSIONS } from './catalogue.ts';
import { writeJson, writeString } from './json-bytes.ts';
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
  return `${body}${SEAL_PREFIX}${hex8(crc32(body) >>> 0)}"}`;
}

/** Why a sealed text was rejected (for messages, never for control flow outside this module). */
export type SealFailure = 'short' | 'no-seal' | 'crc' | 'json' | 'shape';

/** CRC-32 tables for slicing-by-8 (table k maps a byte k positions before the end of an 8-byte word). */
const CRC_TABLE = (() => {
  const t = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 8; k++) {
      c = t[c & 255] ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/**
 * Below this many bytes the CRC is computed in JavaScript: zlib's crc32 costs ~0.5 µs a call in
 * argument checks and a `subarray`, more than the whole CRC of a typical ~170-byte record.
 */
const JS_CRC_MAX = 256;

/** CRC-32 (the zlib polynomial) of `buf[start..end)`, unsigned: the same value as zlib's `crc32`. */
export function crc32Range(buf: Uint8Array, start: number, end: number): number {
  if (end - start >= JS_CRC_MAX) return crc32(buf.subarray(start, end)) >>> 0;
  const T = CRC_TABLE;
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24)) ^ c;
    const b = buf[i + 4] | (buf[i + 5] << 8) | (buf[i + 6] << 16) | (buf[i + 7] << 24);
    c =
      T[1792 + (a & 255)] ^ T[1536 + ((a >>> 8) & 255)] ^ T[1280 + ((a >>> 16) & 255)] ^ T[1024 + (a >>> 24)] ^
      T[768 + (b & 255)] ^ T[512 + ((b >>> 8) & 255)] ^ T[256 + ((b >>> 16) & 255)] ^ T[b >>> 24];
  }
  for (; i < end; i++) c = T[(c ^ buf[i]) & 255] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** Value of one lower-case hex digit byte, or -1. */
function hexDigit(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  return -1;
}

// `,"crc":"` as bytes.
const SEAL_PREFIX_BYTES = Buffer.from(SEAL_PREFIX, 'latin1');

/**
 * Checks the seal of the sealed text at `buf[start..end)` (newline excluded), reading bytes in
 * place: no string, no copy. Returns where the seal starts (the end of the sealed body), or why the
 * seal is bad.
 */
export function checkSeal(buf: Uint8Array, start: number, end: number): number | SealFailure {
  if (end - start < SEAL_BYTES + 2) return 'short';
  const sealAt = end - SEAL_BYTES;
  for (let i = 0; i < SEAL_PREFIX_BYTES.length; i++) if (buf[sealAt + i] !== SEAL_PREFIX_BYTES[i]) return 'no-seal';
  if (buf[end - 2] !== 0x22 || buf[end - 1] !== 0x7d) return 'no-seal';
  let want = 0;
  for (let i = sealAt + SEAL_PREFIX_BYTES.length; i < end - 2; i++) {
    const d = hexDigit(buf[i]);
    if (d < 0) return 'no-seal';
    want = want * 16 + d;
  }
  return crc32Range(buf, start, sealAt) === want ? sealAt : 'crc';
}

/**
 * Parses the sealed body `{...` (everything before the seal) as an object, closing it where the
 * seal was. Parsing the body instead of the whole text leaves the `crc` key out of the object, so
 * it need not be deleted (a `delete` turns a V8 object into a slow dictionary).
 */
function parseBody(body: string): Record<string, unknown> | 'json' | 'shape' {
  let value: unknown;
  try {
    value = JSON.parse(`${body}}`);
  } catch {
    return 'json';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'shape';
  return value as Record<string, unknown>;
}

/**
 * Verifies the seal of one sealed JSON text (without its newline) and parses it. The returned
 * object has no `crc` key.
 *
 * @example
 * ```ts
 * const r = unsealJson(Buffer.from(sealJson('{"a":1}'))); // { ok: true, value: { a: 1 } }
 * ```
 */
export function unsealJson(bytes: Uint8Array): { ok: true; value: Record<string, unknown> } | { ok: false; why: SealFailure } {
  const sealAt = checkSeal(bytes, 0, bytes.length);
  if (typeof sealAt !== 'number') return { ok: false, why: sealAt };
  const value = parseBody(Buffer.from(bytes.buffer, bytes.byteOffset, sealAt).toString('utf8'));
  if (typeof value === 'string') return { ok: false, why: value };
  return { ok: true, value };
}

/**
 * The unsealed body of a record's line: its JSON text without the closing brace, the same bytes as
 * `JSON.stringify({ seq, v, type, key, data }).slice(0, -1)`.
 */
export function recordBody(r: { seq: number; v: number; type: string; key: string; data: unknown }): string {
  return JSON.stringify({ seq: r.seq, v: r.v, type: r.type, key: r.key, data: r.data }).slice(0, -1);
}

/**
 * Room to have free at `off` before `writeRecordLine`: the most its part before the data can take,
 * plus room for typical data (more is asked for when the data needs it).
 */
export function recordLineReserve(type: string, key: string): number {
  return 96 + type.length * 6 + key.length * 6 + SEAL_BYTES + 2048;
}

const HEX_BYTES = Buffer.from('0123456789abcdef', 'latin1');

/** `,"v":V,"type":"T","key":` as bytes, by `v` and type. */
const MIDDLE_BYTES = new Map<string, Buffer[]>();
const SEQ_BYTES = Buffer.from('{"seq":', 'latin1');
const SEQ_PREFIX_BYTES = SEQ_BYTES;
const DATA_BYTES = Buffer.from(',"data":', 'latin1');

function copyBytes(buf: Buffer, off: number, bytes: Uint8Array): number {
  // A native `set` costs more than a loop for the short runs of a record line.
  if (bytes.length > 64) {
    buf.set(bytes, off);
    return off + bytes.length;
  }
  for (let i = 0; i < bytes.length; i++) buf[off + i] = bytes[i];
  return off + bytes.length;
}

/** Writes a non-negative safe integer in decimal, as JSON.stringify does. */
function writeInteger(buf: Buffer, off: number, n: number): number {
  let digits = 1;
  while (digits < 16 && n >= POWERS_OF_TEN[digits]) digits++;
  let at = off + digits;
  // Below 2^31, integer division by 10 stays in small integers (no float division).
  let x = n;
  while (x > 0x7fffffff) {
    const q = Math.floor(x / 10);
    buf[--at] = 0x30 + (x - q * 10);
    x = q;
  }
  while (at > off) {
    const q = (x / 10) | 0;
    buf[--at] = 0x30 + (x - q * 10);
    x = q;
  }
  return off + digits;
}

const POWERS_OF_TEN = Array.from({ length: 17 }, (_, i) => 10 ** i);

/**
 * `Buffer.prototype.utf8Write(string, offset)`: what `buf.write(s, off, 'utf8')` calls after
 * checking its arguments (the checks cost as much as the copy of a record's data). Present in
 * every Node release since 0.x though undocumented; `buf.write` is the fallback.
 */
type Utf8Write = (this: Buffer, s: string, offset: number) => number;
const utf8Write: Utf8Write =
  (Buffer.prototype as unknown as { utf8Write?: Utf8Write }).utf8Write ?? function (this: Buffer, s: string, offset: number) { return this.write(s, offset, 'utf8'); };

/** Writes a string's UTF-8 bytes (`buf` has room for them). */
function writeText(buf: Buffer, off: number, s: string): number {
  return off + utf8Write.call(buf, s, off);
}

/**
 * Writes one record as a sealed line, newline included, into `buf` at `off` and returns the offset
 * after it: the same bytes as `encodeRecord({ seq, v, type, key, data })`, written in place (no
 * line string, no wrapper object; the data's JSON straight into the buffer when `writeJson` can)
 * with the CRC computed over them. `buf` must have `recordLineReserve(type, key)` bytes free at
 * `off`. When the data needs more, the result exceeds `buf.length`: nothing usable was written,
 * and the caller grows `buf` to at least that size and writes again.
 *
 * @throws what `JSON.stringify(data)` throws (a cycle, a BigInt)
 */
export function writeRecordLine(buf: Buffer, off: number, seq: number, v: number, type: string, key: string, data: unknown): number {
  const start = off;
  let byVersion = MIDDLE_BYTES.get(type);
  if (byVersion === undefined) {
    byVersion = [];
    if (MIDDLE_BYTES.size < 1024) MIDDLE_BYTES.set(type, byVersion);
  }
  let middle = byVersion[v];
  if (middle === undefined) {
    middle = Buffer.from(`,"v":${v},"type":${JSON.stringify(type)},"key":`, 'utf8');
    if (v < 64) byVersion[v] = middle;
  }
  off = copyBytes(buf, off, SEQ_BYTES);
  off = writeInteger(buf, off, seq);
  off = copyBytes(buf, off, middle);
  // Keys are names and ids, nearly always on the fast path.
  const keyAt = off;
  off = writeString(buf, keyAt, key);
  if (off < 0) off = writeText(buf, keyAt, JSON.stringify(key));
  off = copyBytes(buf, off, DATA_BYTES);
  let end = writeJson(buf, off, data);
  if (end < 0) {
    const json = JSON.stringify(data);
    const need = off + json.length * 3 + SEAL_BYTES + 1;
    if (need > buf.length) return need;
    end = writeText(buf, off, json);
  }
  if (end + SEAL_BYTES + 1 > buf.length) return end + SEAL_BYTES + 1;
  return seal(buf, start, end);
}

/** Writes the seal of the body `buf[start..sealAt)` and the newline after it; returns the end. */
function seal(buf: Buffer, start: number, sealAt: number): number {
  const crc = crc32Range(buf, start, sealAt);
  let at = copyBytes(buf, sealAt, SEAL_PREFIX_BYTES);
  for (let shift = 28; shift >= 0; shift -= 4) buf[at++] = HEX_BYTES[(crc >>> shift) & 15];
  buf[at++] = 0x22; // "
  buf[at++] = 0x7d; // }
  buf[at++] = NEWLINE;
  return at;
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
  return `${sealJson(`${recordBody(r)}}`)}\n`;
}

/**
 * The seq a record line starts with (`{"seq":N,` as `encodeRecord` writes it), read from its bytes
 * without parsing the line; -1 when the line does not start that way.
 */
export function seqOfLine(buf: Uint8Array, start: number, end: number): number {
  const p = SEQ_PREFIX_BYTES;
  if (end - start < p.length + 2) return -1;
  for (let i = 0; i < p.length; i++) if (buf[start + i] !== p[i]) return -1;
  let at = start + p.length;
  if (buf[at] === 0x30) return -1; // never written with a leading zero
  let n = 0;
  for (; at < end && at - start < p.length + 16; at++) {
    const b = buf[at];
    if (b === 0x2c) return at > start + p.length ? n : -1; // ,
    if (b < 0x30 || b > 0x39) return -1;
    n = n * 10 + (b - 0x30);
  }
  return -1;
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
  const buf = bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const r = decodeRecordAt(buf, null, 0, buf.length);
  return typeof r === 'string' ? { ok: false, why: r } : { ok: true, record: r };
}

/**
 * Decodes the line at `buf[start..end)` (newline excluded) into a record as stored: `decodeLine`
 * without allocating a result or a view. `text`, when given, is `buf` decoded as latin1 and must
 * only be given when `buf` is all ASCII (then its character offsets are byte offsets, and a slice
 * of it is the line's text without decoding it again).
 */
export function decodeRecordAt(buf: Buffer, text: string | null, start: number, end: number): JournalRecord | SealFailure {
  const sealAt = checkSeal(buf, start, end);
  if (typeof sealAt !== 'number') return sealAt;
  const o = parseBody(text !== null ? text.slice(start, sealAt) : buf.toString('utf8', start, sealAt));
  if (typeof o === 'string') return o;
  if (
    !Number.isSafeInteger(o.seq) || (o.seq as number) < 1 ||
    !Number.isSafeInteger(o.v) || (o.v as number) < 0 ||
    typeof o.type !== 'string' || typeof o.key !== 'string' ||
    o.data === null || typeof o.data !== 'object'
  ) {
    return 'shape';
  }
  // One string per event type, not one per record: less to keep for a long tail, and the fold's
  // `switch (r.type)` compares internalized strings by reference.
  const type = TYPES.get(o.type);
  if (type !== undefined) o.type = type;
  return o as unknown as JournalRecord;
}

/** The catalogue's event type names, each mapped to itself (an internalized string). */
const TYPES = new Map<string, string>(Object.keys(EVENT_VERSIONS).map((t) => [t, t]));
