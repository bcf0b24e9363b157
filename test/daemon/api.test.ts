/**
 * atelierd's API, endpoint by endpoint, against a real daemon process on a real unix socket (the
 * fake backend, persisted in the daemon's state directory).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { daemon, QUICKSTART, request, waitChange, type Daemon } from './helpers.ts';

let d: Daemon;
test.before(async () => {
  d = await daemon();
});
test.after(async () => {
  await d.stop();
  rmSync(d.dir, { recursive: true, force: true });
});

const post = (path: string, body?: unknown) => request(d.socket, 'POST', path, body);
const get = (path: string) => request(d.socket, 'GET', path);

/** Start a change, expect 202 with its Location, and wait for it. */
async function change(path: string, body?: unknown): Promise<any> {
  const r = await post(path, body);
  assert.is(r.status, 202, `${path}: ${r.text}`);
  assert.is(r.body.type, 'async');
  assert.is(r.headers.location, `/v1/changes/${r.body.change}`);
  return waitChange(d.socket, r.body.change);
}

test('the socket is its owner\'s alone: directory 0700, socket 0600', () => {
  assert.is(statSync(dirname(d.socket)).mode & 0o777, 0o700);
  assert.is(statSync(d.socket).mode & 0o777, 0o600);
});

test('GET /v1/system-info: version, backend, directories', async () => {
  const r = await get('/v1/system-info');
  assert.is(r.status, 200);
  assert.equal([r.body.type, r.body['status-code']], ['sync', 200]);
  assert.is(r.body.result.backend, 'fake');
  assert.is(r.body.result['state-dir'], d.stateDir);
  assert.match(r.body.result.version, /^\d+\.\d+\.\d+/);
});

test('GET /v1/bases', async () => {
  const r = await get('/v1/bases');
  assert.is(r.status, 200);
  assert.ok(r.body.result.bases.includes('busybox'));
  assert.is(r.body.result['default-base'], 'busybox');
});

test('POST /v1/workshops launch (file): a change that ends Done, with its tasks', async () => {
  const c = await change('/v1/workshops', { action: 'launch', file: QUICKSTART });
  assert.is(c.kind, 'launch');
  assert.is(c.status, 'Done');
  assert.ok(c.ready);
  assert.ok(c['spawn-time'] && c['ready-time']);
  assert.equal(c.tasks.map((t: any) => t.summary).slice(0, 2), ['create', 'start']);
  assert.ok(c.tasks.every((t: any) => t.status === 'Done' && t.progress.done === t.progress.total));
});

test('GET /v1/workshops and /v1/workshops/{name}', async () => {
  const list = await get('/v1/workshops');
  assert.equal(list.body.result.map((w: any) => w.name), ['quickstart']);
  const one = await get('/v1/workshops/quickstart');
  assert.is(one.body.result.status, 'ready');
  const missing = await get('/v1/workshops/nosuch');
  assert.is(missing.status, 404);
  assert.equal([missing.body.type, missing.body.result.kind], ['error', 'NOT_FOUND']);
  const bad = await get('/v1/workshops/Not_A_Name');
  assert.is(bad.status, 400);
  assert.is(bad.body.result.kind, 'INVALID_NAME');
});

test('POST /v1/workshops launch (inline spec), refresh, then the same hooks give the same layers', async () => {
  const spec = { name: 'inline', project: '/srv/inline', sdks: [{ name: 'tools', 'setup-base': 'echo one > "${ATELIER_ROOTFS%/}/etc/tools"' }] };
  assert.is((await change('/v1/workshops', { action: 'launch', spec })).status, 'Done');
  const before = (await get('/v1/workshops/inline')).body.result;
  assert.is((await change('/v1/workshops', { action: 'refresh', spec })).status, 'Done');
  const after = (await get('/v1/workshops/inline')).body.result;
  assert.equal(after.sdks, before.sdks, 'an unchanged SDK keeps its layer');
  const again = await post('/v1/workshops', { action: 'launch', spec });
  assert.is(again.status, 409);
  assert.is(again.body.result.kind, 'ALREADY_EXISTS');
});

test('POST /v1/workshops/{name}: stash, unstash, restore, each a change', async () => {
  assert.is((await change('/v1/workshops/quickstart', { action: 'stash' })).status, 'Done');
  assert.ok((await get('/v1/workshops/quickstart')).body.result.stash);
  assert.is((await change('/v1/workshops/quickstart', { action: 'unstash' })).status, 'Done');
  const ws = (await get('/v1/workshops/quickstart')).body.result;
  assert.is((await change('/v1/workshops/quickstart', { action: 'restore', sdk: ws.sdks[0].sdk })).status, 'Done');
  const refused = await post('/v1/workshops/quickstart', { action: 'unstash' });
  assert.is(refused.status, 409);
  assert.is(refused.body.result.kind, 'FAILED_PRECONDITION');
  const noSdk = await post('/v1/workshops/quickstart', { action: 'restore', sdk: 'nosuch' });
  assert.is(noSdk.status, 404);
});

test('POST /v1/containers: a run is a change whose result is its exit code and output; DELETE removes a kept one', async () => {
  const c = await change('/v1/containers', { from: 'quickstart', script: 'echo hello' });
  assert.is(c.kind, 'run');
  assert.is(c.status, 'Done');
  assert.equal([c.data['exit-code'], c.data.stdout.trim()], [0, 'hello']);
  const failing = await change('/v1/containers', { from: 'quickstart', script: 'exit 3' });
  assert.is(failing.data['exit-code'], 3);
  const kept = await change('/v1/containers', { from: 'quickstart', keep: true });
  const id = kept.data.id;
  assert.ok(id);
  assert.is((await request(d.socket, 'DELETE', `/v1/containers/${id}`)).status, 200);
  assert.is((await request(d.socket, 'DELETE', `/v1/containers/${id}`)).status, 404);
  const none = await post('/v1/containers', { from: 'nosuch' });
  assert.is(none.status, 404);
});

test('POST /v1/gc (dry-run and real) and POST /v1/reconcile are changes with their reports', async () => {
  const dry = await change('/v1/gc', { 'dry-run': true });
  assert.equal([dry.kind, dry.status, dry.data['dry-run']], ['gc', 'Done', true]);
  assert.ok(Array.isArray(dry.data.orphans));
  assert.is((await change('/v1/gc')).status, 'Done');
  const rec = await change('/v1/reconcile');
  assert.equal([rec.kind, rec.status, rec.data.pending], ['reconcile', 'Done', 0]);
});

test('GET /v1/changes: select in-progress (default), ready, all; GET /v1/changes/{id}', async () => {
  const all = (await get('/v1/changes?select=all')).body.result;
  assert.ok(all.length >= 8);
  assert.equal((await get('/v1/changes')).body.result, [], 'nothing in progress');
  assert.is((await get('/v1/changes?select=ready')).body.result.length, all.length);
  assert.is((await get(`/v1/changes/${all[0].id}`)).body.result.id, all[0].id);
  assert.is((await get('/v1/changes/op-nosuch')).status, 404);
  assert.is((await get('/v1/changes?select=bogus')).status, 400);
});

test('POST /v1/workshops/{name} remove, and abort of a ready change is refused', async () => {
  const c = await change('/v1/workshops/inline', { action: 'remove' });
  assert.is(c.status, 'Done');
  const abort = await post(`/v1/changes/${c.id}`, { action: 'abort' });
  assert.is(abort.status, 409);
  assert.is(abort.body.result.kind, 'FAILED_PRECONDITION');
  assert.is((await get('/v1/workshops/inline')).status, 404);
});

test('an unknown endpoint is a 404 in the error envelope', async () => {
  const r = await get('/v1/nothing');
  assert.is(r.status, 404);
  assert.equal([r.body.type, r.body['status-code'], r.body.result.kind], ['error', 404, 'NOT_FOUND']);
});

test('one JSON log line per request on stderr, carrying the change id', async () => {
  const r = await post('/v1/gc', { 'dry-run': true });
  await waitChange(d.socket, r.body.change);
  await new Promise((res) => setTimeout(res, 50));
  const lines = d.stderr.trim().split('\n').map((l) => JSON.parse(l));
  const line = lines.find((l) => l.change === r.body.change && l.method === 'POST');
  assert.ok(line, 'the POST that started the change is logged with its id');
  assert.equal([line.path, line.status], ['/v1/gc', 202]);
});

test.run();
