/**
 * Conformance: one SDK layer shared by many instances (`docs/design.md`, SDK cache), as the port
 * serves it: copies of one layer into instances with `resetIdentity` (each its own identity and
 * identity files, writes kept apart, the layer untouched), a layer removed under its copies,
 * `resetIdentity` refused onto a layer, and `baseFingerprint`.
 *
 * The identity files are made by a hook in the source instance: a non-empty `/etc/machine-id` and
 * SSH host key files (not real keys: the adapter makes new ones, so only their names matter). The
 * new keys are checked for what every adapter gives (the fake's are shaped like OpenSSH's, not
 * real): a private key, a public key starting with its algorithm, root's, 0600 and 0644.
 *
 * @example
 * ```ts
 * sharingCases('fake', make);
 * ```
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { FileInfo, ObjectRef } from '../../../backends/types.ts';
import type { Ctx } from './fixture.ts';
import { rejects, rootPath as p, uniqueName, withCtx } from './fixture.ts';
import type { Make } from './types.ts';

/** The host key types the source gets, and whether each has its `.pub` (rsa has none: none may appear). */
const KEYS: ReadonlyArray<{ type: string; pub: boolean; algorithm: string }> = [
  { type: 'ed25519', pub: true, algorithm: 'ssh-ed25519 ' },
  { type: 'ecdsa', pub: true, algorithm: 'ecdsa-' },
  { type: 'rsa', pub: false, algorithm: 'ssh-rsa ' },
];
const MACHINE_ID = '0123456789abcdef0123456789abcdef\n';
const keyPath = (type: string) => `/etc/ssh/ssh_host_${type}_key`;

/** The hook that gives a root identity files (and a file next to them no reset touches). */
const IDENTITY_FILES = [
  'set -eu',
  `mkdir -p ${p('/etc/ssh')}`,
  `echo ${MACHINE_ID.trim()} > ${p('/etc/machine-id')}`,
  `echo 'PermitRootLogin no' > ${p('/etc/ssh/sshd_config')}`,
  ...KEYS.flatMap(({ type, pub }) => [
    `echo 'not a key: ${type} of the source' > ${p(keyPath(type))}`,
    `chmod 600 ${p(keyPath(type))}`,
    ...(pub ? [`echo 'ssh-${type} AAAAnotakey root@source' > ${p(`${keyPath(type)}.pub`)}`] : []),
  ]),
].join('\n');

/** A stopped workshop (after `script`), snapshotted into a new `sdk` layer. */
async function sdkLayer(c: Ctx, script: string): Promise<{ ws: ObjectRef; layer: ObjectRef }> {
  const ws = await c.workshop('src', { script });
  const layer = c.layer('sdk');
  await c.b.copy({ source: ws, target: layer, tags: c.tags('sdk') });
  return { ws, layer };
}

/** The identity files of `ref`, by path (null where absent). */
async function identityFiles(c: Ctx, ref: ObjectRef): Promise<Record<string, FileInfo | null>> {
  const paths = ['/etc/machine-id', '/etc/ssh/sshd_config', ...KEYS.flatMap(({ type }) => [keyPath(type), `${keyPath(type)}.pub`])];
  const out: Record<string, FileInfo | null> = {};
  for (const path of paths) out[path] = await c.b.readFile(ref, path);
  return out;
}

/** `ref`'s identity files were reset from `source`'s (the source's files as `identityFiles` read them). */
function assertReset(what: string, got: Record<string, FileInfo | null>, source: Record<string, FileInfo | null>): void {
  assert.is(got['/etc/machine-id']?.type, 'file', `${what}: machine-id still there`);
  assert.is(got['/etc/machine-id']?.content, '', `${what}: machine-id emptied`);
  assert.is(got['/etc/ssh/sshd_config']?.content, 'PermitRootLogin no\n', `${what}: sshd_config untouched`);
  for (const { type, pub, algorithm } of KEYS) {
    const key = got[keyPath(type)];
    assert.ok(key && key.type === 'file', `${what}: ${type} key still there`);
    assert.is.not(key.content, source[keyPath(type)]?.content, `${what}: ${type} key made anew`);
    assert.match(key.content ?? '', /PRIVATE KEY/, `${what}: ${type} key is a private key`);
    assert.is(key.mode, 0o600, `${what}: ${type} key mode`);
    assert.is(key.uid, 0, `${what}: ${type} key owner`);
    assert.is(key.gid, 0, `${what}: ${type} key group`);
    const pubFile = got[`${keyPath(type)}.pub`];
    if (!pub) {
      assert.is(pubFile, null, `${what}: no ${type}.pub where the source had none`);
      continue;
    }
    assert.ok(pubFile && pubFile.type === 'file', `${what}: ${type}.pub still there`);
    assert.is.not(pubFile.content, source[`${keyPath(type)}.pub`]?.content, `${what}: ${type}.pub made anew`);
    assert.ok(pubFile.content?.startsWith(algorithm), `${what}: ${type}.pub starts with ${algorithm.trim()}: ${pubFile.content}`);
    assert.is(pubFile.mode, 0o644, `${what}: ${type}.pub mode`);
    assert.is(pubFile.uid, 0, `${what}: ${type}.pub owner`);
  }
}

/** Every key and `.pub` content of two resets differs (each instance its own keys). */
function assertOwnKeys(a: Record<string, FileInfo | null>, b: Record<string, FileInfo | null>): void {
  for (const { type, pub } of KEYS) {
    assert.is.not(a[keyPath(type)]?.content, b[keyPath(type)]?.content, `${type} keys differ`);
    if (pub) assert.is.not(a[`${keyPath(type)}.pub`]?.content, b[`${keyPath(type)}.pub`]?.content, `${type}.pub differ`);
  }
}

export function sharingCases(name: string, make: Make): void {
  const t = suite(`${name}: one layer shared by many instances`);

  t('one layer copied into two instances: own identities, writes kept apart, the layer unchanged', withCtx(make, async (c) => {
    const { layer } = await sdkLayer(c, `mkdir -p ${p('/opt/sdk')}\necho v1 > ${p('/opt/sdk/version')}`);
    const before = await c.b.inspect(layer);
    const a = c.ws('a');
    const b = c.ws('b');
    const ia = await c.b.copy({ source: layer, target: a, tags: c.tags('workshop'), resetIdentity: true });
    const ib = await c.b.copy({ source: layer, target: b, tags: c.tags('workshop'), resetIdentity: true });
    assert.is(ia.status, 'stopped');
    const ids = [ia.identity, ib.identity, before!.identity];
    assert.is(new Set(ids.map((i) => i.mac)).size, 3, 'every MAC differs');
    assert.is(new Set(ids.map((i) => i.uuid)).size, 3, 'every uuid differs');
    assert.equal((await c.b.inspect(a))!.identity, ia.identity);
    for (const ref of [a, b]) assert.is(await c.content(ref, '/opt/sdk/version'), 'v1\n', ref.name);
    await c.hook(a, `echo a > ${p('/opt/sdk/version')}\necho mine > ${p('/etc/only-a')}`);
    await c.hook(b, `echo mine > ${p('/etc/only-b')}`);
    assert.is(await c.content(a, '/opt/sdk/version'), 'a\n');
    assert.is(await c.content(b, '/opt/sdk/version'), 'v1\n');
    assert.is(await c.content(layer, '/opt/sdk/version'), 'v1\n');
    assert.is(await c.b.readFile(b, '/etc/only-a'), null);
    assert.is(await c.b.readFile(layer, '/etc/only-a'), null);
    assert.is(await c.b.readFile(a, '/etc/only-b'), null);
    assert.is(await c.b.readFile(layer, '/etc/only-b'), null);
    assert.equal(await c.b.inspect(layer), before);
  }));

  t('removing a layer its instances were copied from succeeds; they keep their content and run', withCtx(make, async (c) => {
    const { layer } = await sdkLayer(c, `mkdir -p ${p('/opt/sdk')}\necho v1 > ${p('/opt/sdk/version')}`);
    const a = c.ws('a');
    const b = c.ws('b');
    await c.b.copy({ source: layer, target: a, tags: c.tags('workshop'), resetIdentity: true });
    await c.b.copy({ source: layer, target: b, tags: c.tags('workshop') });
    await c.b.remove(layer);
    assert.is(await c.b.inspect(layer), null);
    for (const ref of [a, b]) {
      assert.is(await c.content(ref, '/opt/sdk/version'), 'v1\n', ref.name);
      await c.hook(ref, `echo more >> ${p('/opt/sdk/version')}`);
      assert.is(await c.content(ref, '/opt/sdk/version'), 'v1\nmore\n', ref.name);
    }
  }));

  t('resetIdentity empties machine-id and makes new host keys; a plain copy keeps them byte for byte', withCtx(make, async (c) => {
    const { layer } = await sdkLayer(c, IDENTITY_FILES);
    const source = await identityFiles(c, layer);
    assert.is(source['/etc/machine-id']?.content, MACHINE_ID);
    const reset = c.ws('reset');
    const other = c.ws('other');
    const kept = c.ws('kept');
    await c.b.copy({ source: layer, target: reset, tags: c.tags('workshop'), resetIdentity: true });
    await c.b.copy({ source: layer, target: other, tags: c.tags('workshop'), resetIdentity: true });
    await c.b.copy({ source: layer, target: kept, tags: c.tags('workshop') });
    const got = await identityFiles(c, reset);
    assertReset('reset', got, source);
    assertReset('other', await identityFiles(c, other), source);
    assertOwnKeys(got, await identityFiles(c, other));
    assert.is(await c.b.readFile(reset, '/etc/ssh/ssh_host_dsa_key'), null, 'no key type the source lacks');
    assert.is(await c.b.readFile(reset, '/etc/ssh/ssh_host_dsa_key.pub'), null);
    assert.equal(await identityFiles(c, kept), source, 'a copy without resetIdentity keeps them');
    assert.equal(await identityFiles(c, layer), source, 'the layer keeps its own');
    // The reset instance runs, and its files are what it reads.
    await c.hook(reset, `cat ${p('/etc/machine-id')} > ${p('/etc/seen')}`);
    assert.is(await c.content(reset, '/etc/seen'), '');
  }));

  t('resetIdentity of a root without identity files creates none', withCtx(make, async (c) => {
    const { layer } = await sdkLayer(c, `rm -f ${p('/etc/machine-id')}\nrm -rf ${p('/etc/ssh')}\necho x > ${p('/etc/x')}`);
    const ws = c.ws('bare');
    await c.b.copy({ source: layer, target: ws, tags: c.tags('workshop'), resetIdentity: true });
    assert.is(await c.b.readFile(ws, '/etc/machine-id'), null);
    assert.is(await c.b.readFile(ws, '/etc/ssh'), null);
    assert.is(await c.content(ws, '/etc/x'), 'x\n');
    // /etc/ssh without host keys: nothing made in it either.
    const { layer: noKeys } = await sdkLayer(c, `mkdir -p ${p('/etc/ssh')}\necho 'Port 22' > ${p('/etc/ssh/sshd_config')}`);
    const ws2 = c.ws('nokeys');
    await c.b.copy({ source: noKeys, target: ws2, tags: c.tags('workshop'), resetIdentity: true });
    assert.is(await c.content(ws2, '/etc/ssh/sshd_config'), 'Port 22\n');
    for (const { type } of KEYS) assert.is(await c.b.readFile(ws2, keyPath(type)), null, type);
  }));

  t('resetIdentity onto a layer is INVALID and makes or changes nothing', withCtx(make, async (c) => {
    const { ws, layer } = await sdkLayer(c, IDENTITY_FILES);
    const target = c.layer('target');
    await rejects(c.b.copy({ source: ws, target, tags: c.tags('sdk'), resetIdentity: true }), 'INVALID', 'new layer');
    assert.is(await c.b.inspect(target), null);
    await rejects(c.b.copy({ source: layer, target, tags: c.tags('stash-sdk'), resetIdentity: true }), 'INVALID', 'layer to layer');
    assert.is(await c.b.inspect(target), null);
    const before = await c.b.inspect(layer);
    await rejects(c.b.copy({ source: ws, target: layer, tags: c.tags('sdk'), refresh: true, resetIdentity: true }), 'INVALID', 'refresh of a layer');
    assert.equal(await c.b.inspect(layer), before);
    assert.is(await c.content(layer, '/etc/machine-id'), MACHINE_ID);
  }));

  t('a refresh-copy with resetIdentity keeps the instance identity and resets its files', withCtx(make, async (c) => {
    const { layer } = await sdkLayer(c, IDENTITY_FILES);
    const source = await identityFiles(c, layer);
    const ws = c.ws('ws');
    const made = await c.b.copy({ source: layer, target: ws, tags: c.tags('workshop') });
    assert.equal(await identityFiles(c, ws), source);
    await c.hook(ws, `echo gone > ${p('/etc/later')}`);
    const back = await c.b.copy({ source: layer, target: ws, tags: c.tags('workshop'), refresh: true, resetIdentity: true });
    assert.equal(back.identity, made.identity);
    assert.equal((await c.b.inspect(ws))!.identity, made.identity);
    assert.is(await c.b.readFile(ws, '/etc/later'), null, 'the root is the layer\'s');
    const first = await identityFiles(c, ws);
    assertReset('refreshed', first, source);
    // Again, from a reset instance: new keys again, identity still kept.
    const again = await c.b.copy({ source: layer, target: ws, tags: c.tags('workshop'), refresh: true, resetIdentity: true });
    assert.equal(again.identity, made.identity);
    const second = await identityFiles(c, ws);
    assertReset('refreshed again', second, source);
    assertOwnKeys(first, second);
    assert.equal(await identityFiles(c, layer), source);
  }));

  t('baseFingerprint: stable, NOT_FOUND for an unknown base, different for another base and for a base registered again', withCtx(make, async (c) => {
    const fp = await c.b.baseFingerprint(c.b.defaultBase);
    assert.type(fp, 'string');
    assert.ok(fp.length > 0 && fp.length <= 80, fp);
    assert.is(await c.b.baseFingerprint(c.b.defaultBase), fp);
    await rejects(c.b.baseFingerprint(uniqueName('no-such-base')), 'NOT_FOUND');
    const register = c.fixture.registerBase;
    if (!register) {
      console.log(`${name}: skipped "baseFingerprint ... registered again": the factory provides no registerBase()`);
      return;
    }
    const base = uniqueName('base');
    await register(base);
    assert.ok((await c.b.listBases()).includes(base));
    const first = await c.b.baseFingerprint(base);
    assert.is.not(first, fp, 'another base');
    assert.is(await c.b.baseFingerprint(base), first);
    await register(base);
    const second = await c.b.baseFingerprint(base);
    assert.is.not(second, first, 'the same name registered again from another root');
    assert.is(await c.b.baseFingerprint(base), second);
    assert.is(await c.b.baseFingerprint(c.b.defaultBase), fp, 'the default is unchanged');
  }));

  t.run();
}
