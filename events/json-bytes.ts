/**
 * JSON written straight into a buffer: the bytes `JSON.stringify(value)` would give, for the
 * plain data journal records carry, without building the string and copying it again.
 *
 * Why not a library: the point is to skip the intermediate string, which no JSON library for
 * Node does (they all return strings); and `JSON.stringify` plus the UTF-8 copy of its result
 * was the largest single cost of a durable append (about 0.4 µs of 1.5 µs for a typical record),
 * which this cuts to about a third.
 *
 * The fast path covers plain objects (prototype `Object.prototype` or `null`, no `toJSON`),
 * arrays, printable-ASCII strings without `"` or `\`, numbers, booleans and `null`, nested up to
 * `MAX_DEPTH`. Anything else (an escape, non-ASCII text, a `Date` or other `toJSON`, a class
 * instance, a `BigInt`, a cycle) returns -1 and the caller takes `JSON.stringify`, which also
 * throws what it throws for data JSON cannot encode. Property order, skipped `undefined`,
 * functions and symbols, `null` for them in arrays and for non-finite numbers all follow
 * `JSON.stringify` (a property test compares the two on random values).
 *
 * Bytes past the end of `buf` are dropped, as typed arrays drop out-of-range stores: the
 * returned end may then exceed `buf.length`, and the caller grows the buffer and writes again.
 *
 * @example
 * ```ts
 * const buf = Buffer.alloc(64);
 * const end = writeJson(buf, 0, { id: 'c1', n: 2 }); // buf.toString('latin1', 0, end) === '{"id":"c1","n":2}'
 * if (end < 0) buf.write(JSON.stringify(value));      // not on the fast path
 * ```
 */

/** Deeper than this, `writeJson` gives up (and `JSON.stringify` reports a cycle, if it is one). */
export const MAX_DEPTH = 32;

const OBJECT_PROTOTYPE = Object.prototype;

/**
 * Writes the JSON of `value` at `off` and returns the offset after it; -1 when `value` is not on
 * the fast path (nothing useful was written then). The result may exceed `buf.length`: see above.
 */
export function writeJson(buf: Buffer, off: number, value: unknown): number {
  return writeValue(buf, off, value, 0);
}

function writeValue(buf: Buffer, off: number, v: unknown, depth: number): number {
  switch (typeof v) {
    case 'string':
      return writeString(buf, off, v);
    case 'number':
      return writeNumber(buf, off, v);
    case 'boolean':
      return v ? writeAscii(buf, off, 'true') : writeAscii(buf, off, 'false');
    case 'object':
      if (v === null) return writeAscii(buf, off, 'null');
      if (depth >= MAX_DEPTH) return -1;
      return Array.isArray(v) ? writeArray(buf, off, v, depth) : writeObject(buf, off, v as Record<string, unknown>, depth);
    default:
      // bigint (JSON.stringify throws), or undefined/function/symbol where the caller did not skip it.
      return -1;
  }
}

/** A string whose JSON is itself between quotes (printable ASCII, no `"` or `\`); else -1. */
export function writeString(buf: Buffer, off: number, s: string): number {
  buf[off++] = 0x22;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
    buf[off++] = c;
  }
  buf[off++] = 0x22;
  return off;
}

/** Text known to be ASCII (literals, number strings). */
function writeAscii(buf: Buffer, off: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) buf[off + i] = s.charCodeAt(i);
  return off + n;
}

function writeNumber(buf: Buffer, off: number, x: number): number {
  if (x >= 0 && x <= 0x7fffffff && (x | 0) === x) {
    // The common case, digits without a string (-0 lands here too and is written "0", as JSON does).
    let digits = 1;
    for (let p = 10; x >= p && digits < 10; p *= 10) digits++;
    let at = off + digits;
    let rest = x;
    while (at > off) {
      const q = (rest / 10) | 0;
      buf[--at] = 0x30 + (rest - q * 10);
      rest = q;
    }
    return off + digits;
  }
  // JSON writes finite numbers as Number#toString does, and anything else as null.
  return writeAscii(buf, off, Number.isFinite(x) ? String(x) : 'null');
}

/** undefined, functions and symbols: skipped as property values, null as array elements. */
function isSkipped(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

function writeArray(buf: Buffer, off: number, a: unknown[], depth: number): number {
  if (typeof (a as { toJSON?: unknown }).toJSON === 'function') return -1;
  buf[off++] = 0x5b;
  for (let i = 0; i < a.length; i++) {
    if (i > 0) buf[off++] = 0x2c;
    const v = a[i];
    off = isSkipped(v) ? writeAscii(buf, off, 'null') : writeValue(buf, off, v, depth + 1);
    if (off < 0) return -1;
  }
  buf[off++] = 0x5d;
  return off;
}

function writeObject(buf: Buffer, off: number, o: Record<string, unknown>, depth: number): number {
  const proto: unknown = Object.getPrototypeOf(o);
  if ((proto !== OBJECT_PROTOTYPE && proto !== null) || typeof o.toJSON === 'function') return -1;
  buf[off++] = 0x7b;
  // Object.keys is the order and the set JSON.stringify uses (own enumerable string keys).
  const keys = Object.keys(o);
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const v = o[k];
    if (isSkipped(v)) continue;
    if (!first) buf[off++] = 0x2c;
    first = false;
    off = writeString(buf, off, k);
    if (off < 0) return -1;
    buf[off++] = 0x3a;
    off = writeValue(buf, off, v, depth + 1);
    if (off < 0) return -1;
  }
  buf[off++] = 0x7d;
  return off;
}
