import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32 } from 'node:zlib';
import fs from 'node:fs';
import { join } from 'node:path';
import { decodeLine, encodeRecord, sealJson, unsealJson } from '../../events/record.ts';
import { openJournal } from '../../events/journal.ts';
import { segmentName } from '../../events/segments.ts';
import { tempDir } from './helpers.ts';

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

test('appends write the bytes JSON.stringify + seal would, escapes and non-ASCII included', async () => {
  const root = await tempDir('record-bytes');
  const dir = join(root, 'journal');
  const { journal } = await openJournal({ dir, durable: false });
  const odd = ['c1', 'c"q\\', 'é☃', 'tab\tnl\n', '\u2028\u2029', 'lone \ud800 surrogate', '😀', ''];
  const inputs = odd.map((id, i) => ({ type: 'container.started' as const, key: id, data: { id, at: `T${i}`, nested: { list: [1, -0.5, 1e21, null, true], s: id } } as any }));
  const recs = [...(await journal.append(inputs.slice(0, 3))), ...(await Promise.all(inputs.slice(3).map((e) => journal.append([e])))).flat()];
  await journal.close();
  const expected = recs.map((r) => `${sealJson(JSON.stringify({ seq: r.seq, v: r.v, type: r.type, key: r.key, data: r.data }))}\n`).join('');
  assert.is((await fs.promises.readFile(join(dir, segmentName(1)))).toString('utf8'), expected);
  assert.is(recs.map((r) => encodeRecord(r)).join(''), expected);
  // And they read back as they were appended (the non-ASCII segment takes the UTF-8 path).
  const again = await openJournal({ dir, durable: false });
  assert.equal(again.tail, recs.map((r) => JSON.parse(JSON.stringify(r))));
  await again.journal.close();
});

test('data that is not a JSON object is refused before anything is queued', async () => {
  const root = await tempDir('record-refuse');
  const { journal } = await openJournal({ dir: join(root, 'journal'), durable: false });
  const bad = await journal.append([{ type: 'container.started', key: 'a', data: null as any }]).catch((e) => e);
  assert.is(bad.code, 'INVALID_ARGUMENT');
  const cyclic: any = { id: 'x', at: 'T' };
  cyclic.self = cyclic;
  const thrown = await journal.append([{ type: 'container.started', key: 'ok', data: { id: 'ok', at: 'T' } }, { type: 'container.started', key: 'x', data: cyclic }]).catch((e) => e);
  assert.instance(thrown, TypeError);
  const [next] = await journal.append([{ type: 'container.started', key: 'b', data: { id: 'b', at: 'T' } }]);
  assert.is(next.seq, 1, 'the refused appends took no seq');
  await journal.close();
});

test.run();
