/**
 * `backends/identity.ts`, the part of `resetIdentity` the overlay and LXD adapters share: which
 * files are host keys, the refusal of a layer target, and the host's `ssh-keygen` (real key pairs;
 * `INVALID` for a type it cannot make; `UNAVAILABLE` naming the Debian package without it).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { checkResetIdentity, hostKeyType, makeHostKeys, SSH_KEYGEN_PACKAGE } from '../../backends/identity.ts';
import { rejects } from './cases/fixture.ts';

const t = suite('backends/identity: what resetIdentity shares');

t('host key names and the layer refusal', () => {
  assert.is(hostKeyType('ssh_host_ed25519_key'), 'ed25519');
  assert.is(hostKeyType('ssh_host_ecdsa_key'), 'ecdsa');
  assert.is(hostKeyType('ssh_host_ed25519_key.pub'), null);
  assert.is(hostKeyType('sshd_config'), null);
  assert.throws(() => checkResetIdentity({ target: { space: 'layers', name: 'l' }, resetIdentity: true }), (e: unknown) => (e as { code?: string }).code === 'INVALID');
  checkResetIdentity({ target: { space: 'layers', name: 'l' } });
  checkResetIdentity({ target: { space: 'workshops', name: 'w' }, resetIdentity: true });
});

t('makeHostKeys: a real pair per type, commented; a type ssh-keygen cannot make is INVALID', async () => {
  const keys = await makeHostKeys(['ed25519', 'ecdsa'], 'root@w');
  assert.equal([...keys.keys()], ['ed25519', 'ecdsa']);
  const dir = mkdtempSync(join(tmpdir(), 'atelier-keys-'));
  try {
    for (const [type, { key, pub }] of keys) {
      assert.match(key.toString(), /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
      const [algorithm, body, comment] = pub.toString().trim().split(' ');
      assert.ok(algorithm === `ssh-${type}` || algorithm!.startsWith('ecdsa-'), algorithm);
      assert.is(comment, 'root@w');
      const file = join(dir, type);
      writeFileSync(file, key, { mode: 0o600 });
      assert.is(execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).split(' ').slice(0, 2).join(' '), `${algorithm} ${body}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal([...(await makeHostKeys([], 'root@w')).keys()], []);
  await rejects(makeHostKeys(['bogus'], 'root@w'), 'INVALID');
});

t('without ssh-keygen on the host: UNAVAILABLE, naming the package', async () => {
  const path = process.env.PATH;
  const empty = mkdtempSync(join(tmpdir(), 'atelier-nopath-'));
  process.env.PATH = empty;
  try {
    const e = await rejects(makeHostKeys(['ed25519'], 'root@w'), 'UNAVAILABLE');
    assert.is(e.info['package'], SSH_KEYGEN_PACKAGE);
    assert.match(e.message, /openssh-client/);
  } finally {
    process.env.PATH = path;
    rmSync(empty, { recursive: true, force: true });
  }
});

t.run();
