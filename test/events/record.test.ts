import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32 } from 'node:zlib';
import { decodeLine, encodeRecord, sealJson, unsealJson } from '../../events/record.ts';

const rec = { seq: 7, v: 1, type: 'container.started', key: 'c1', data: { id: 'c1', at: 'T', note: 'é ☃ \u2028' } };

test('a record is one line of plain JSON, key order fixed, crc of the bytes before ,"crc"', () => {
  const line = encodeRecord(rec);
  assert.ok(line.endsWith('\n'));
  assert.is(line.indexOf('\n'), line.length - 1);
  const parsed = JSON.parse(line);
  assert.equal(Object.keys(parsed), ['seq', 'v', 'type', 'key', 'data', 'crc']);
  const body = Buffer.from(line).subarray(0, Buffer.from(line).lastIndexOf(',"crc"'));
  assert.is(parsed.crc, crc32(body).toString(16).padStart(8, '0'));
});

test('decodeLine round-trips and drops crc', () => {
  const line = Buffer.from(encodeRecord(rec));
  const r = decodeLine(line.subarray(0, line.length - 1));
  assert.ok(r.ok);
  if (r.ok) assert.equal(r.record, rec);
});

test('decodeLine rejects a flipped byte, a truncated line and a bad shape', () => {
  const line = Buffer.from(encodeRecord(rec)).subarray(0, -1);
  for (let i = 0; i < line.length; i++) {
    const bad = Buffer.from(line);
    bad[i] ^= 0x01;
    assert.not.ok(decodeLine(bad).ok, `flip at ${i}`);
  }
  for (let n = 0; n < line.length; n++) assert.not.ok(decodeLine(line.subarray(0, n)).ok, `cut at ${n}`);
  assert.not.ok(decodeLine(Buffer.from(sealJson('{"seq":0,"v":1,"type":"x","key":"k","data":{}}'))).ok);
  assert.not.ok(decodeLine(Buffer.from(sealJson('{"seq":1,"v":1,"type":"x","key":"k"}'))).ok);
});

test('unsealJson reports why', () => {
  const r = unsealJson(Buffer.from(sealJson('{"a":1}').replace('1', '2')));
  assert.equal(r, { ok: false, why: 'crc' });
  assert.equal(unsealJson(Buffer.from('{"a":1}')), { ok: false, why: 'short' });
});

test.run();
