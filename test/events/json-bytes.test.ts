/**
 * `writeJson` writes the bytes `JSON.stringify` would, or declines (-1) and the record takes
 * `JSON.stringify`; either way a record line is the same bytes as `encodeRecord` gives.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { writeJson, MAX_DEPTH } from '../../events/json-bytes.ts';
import { encodeRecord, recordLineReserve, writeRecordLine } from '../../events/record.ts';

/** Seed of the property runs: printed, and set with ATELIER_JSON_SEED to replay a failure. */
const SEED = Number(process.env.ATELIER_JSON_SEED ?? 20261201);

function fast(value: unknown, size = 1 << 16): string | null {
  const buf = Buffer.alloc(size);
  const end = writeJson(buf, 0, value);
  return end < 0 ? null : buf.toString('utf8', 0, end);
}

/** Plain data as journal events carry it, with the values that take the slow path mixed in. */
const data = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string(),
    fc.string({ unit: 'grapheme-ascii' }),
    fc.string({ unit: 'binary' }),
    fc.integer(),
    fc.double(),
    fc.constantFrom(0, -0, 2 ** 31 - 1, 2 ** 31, 2 ** 53, 1e21, 1e-7, NaN, Infinity, -Infinity),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    tie('array'),
    tie('object'),
  ),
  array: fc.array(tie('value'), { maxLength: 5 }),
  object: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('0', '1', '10', '__proto__', 'toJSON', 'a"b')), tie('value'), { maxKeys: 5 }),
}));

test('writeJson gives the bytes of JSON.stringify, or declines', () => {
  console.log(`json-bytes: seed ${SEED}`);
  fc.assert(
    fc.property(data.object, (o) => {
      const got = fast(o);
      if (got !== null) assert.is(got, JSON.stringify(o));
    }),
    { seed: SEED, numRuns: 2000 },
  );
});

test('a record line is the bytes of encodeRecord whichever path its data takes', () => {
  fc.assert(
    fc.property(data.object, fc.string(), fc.nat(), (d, key, seq) => {
      const buf = Buffer.alloc(recordLineReserve('container.started', key) + 4 * JSON.stringify(d).length + 64);
      const end = writeRecordLine(buf, 0, seq + 1, 1, 'container.started', key, d);
      assert.ok(end <= buf.length);
      assert.is(buf.toString('utf8', 0, end), encodeRecord({ seq: seq + 1, v: 1, type: 'container.started', key, data: d }));
    }),
    { seed: SEED, numRuns: 1000 },
  );
});

test('the fast path covers journal data and declines what only JSON.stringify knows', () => {
  const effect = { op: 'op-1', step: 4, effect: { type: 'copy', tags: { owner: 'me' }, refresh: true, list: [1, null, undefined] }, at: '2026-11-23T10:00:00.000Z', skip: undefined };
  assert.is(fast(effect), JSON.stringify(effect));
  assert.is(fast({ n: -0, big: 2 ** 40, neg: -5, f: 0.1, inf: Infinity }), JSON.stringify({ n: -0, big: 2 ** 40, neg: -5, f: 0.1, inf: Infinity }));
  assert.is(fast(Object.assign(Object.create(null), { a: 1 })), '{"a":1}');
  for (const declined of [{ s: 'é' }, { s: 'a\nb' }, { s: 'q"' }, { d: new Date(0) }, { m: new Map() }, { b: 1n }, { j: { toJSON: () => 1 } }]) {
    assert.is(fast(declined), null, JSON.stringify(declined, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
  }
  let deep: unknown = 1;
  for (let i = 0; i < MAX_DEPTH + 1; i++) deep = [deep];
  assert.is(fast(deep), null, 'too deep');
});

test('bytes past the end of the buffer are dropped and the end says how much room was needed', () => {
  const value = { id: 'c1', list: [1, 2, 3], note: 'plain' };
  const json = JSON.stringify(value);
  const small = Buffer.alloc(8);
  assert.is(writeJson(small, 0, value), json.length);
  const buf = Buffer.alloc(64);
  const need = writeRecordLine(buf, 0, 1, 1, 'container.started', 'c1', { pad: 'x'.repeat(200) });
  assert.ok(need > buf.length, 'asks for more room');
  const big = Buffer.alloc(need);
  const end = writeRecordLine(big, 0, 1, 1, 'container.started', 'c1', { pad: 'x'.repeat(200) });
  assert.is(big.toString('utf8', 0, end), encodeRecord({ seq: 1, v: 1, type: 'container.started', key: 'c1', data: { pad: 'x'.repeat(200) } }));
});

test.run();
