/**
 * The tar walk `addBase` streams a root through on LXD (`backends/lxd/rootfs-tar.ts`), without a
 * daemon: archives GNU tar writes in its three formats (ustar names with a prefix, GNU long-name
 * records, pax headers) pass through byte for byte up to their end, their members are named as
 * tar names them, symlinks resolve as inside the root, and an added file makes a valid archive.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink, writeFile, chmod, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { END_OF_ARCHIVE, TarWalk, fileEntry, memberPath } from '../../backends/lxd/rootfs-tar.ts';
import { isBackendError } from '../../backends/types.ts';

const t = suite('lxd rootfs tar walk');
let tmp = '';
/** A directory whose files' names pass 100 bytes (a ustar prefix, a GNU or pax record), itself under 100. */
const LONG = `opt/${'a-rather-long-directory-name/'.repeat(3)}bin`;

/** Feed `data` through a walk in uneven chunks; what came out and the walk. */
async function walked(data: Buffer): Promise<{ out: Buffer; walk: TarWalk }> {
  const walk = new TarWalk();
  const out: Buffer[] = [];
  walk.on('data', (c: Buffer) => out.push(c));
  const done = new Promise<void>((resolve, reject) => {
    walk.on('end', resolve);
    walk.on('error', reject);
  });
  for (let at = 0, n = 1; at < data.length; at += n, n = (n * 7 + 333) % 5000 + 1) walk.write(data.subarray(at, at + n));
  walk.end();
  await done;
  return { out: Buffer.concat(out), walk };
}

t.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'atelier-rootfs-tar-'));
  const root = path.join(tmp, 'root');
  await mkdir(path.join(root, 'usr/sbin'), { recursive: true });
  await mkdir(path.join(root, 'usr/bin'), { recursive: true });
  await mkdir(path.join(root, 'etc'), { recursive: true });
  await mkdir(path.join(root, LONG), { recursive: true });
  await writeFile(path.join(root, LONG, 'real-init'), '#!/bin/sh\n');
  await chmod(path.join(root, LONG, 'real-init'), 0o755);
  await writeFile(path.join(root, 'usr/bin/dash'), 'x');
  await chmod(path.join(root, 'usr/bin/dash'), 0o755);
  await symlink('dash', path.join(root, 'usr/bin/sh'));
  await symlink('usr/bin', path.join(root, 'bin'));
  await symlink('usr/sbin', path.join(root, 'sbin'));
  // Through a directory symlink; a link name over 100 bytes only where the format can hold one.
  await symlink(LONG.slice('opt/'.length), path.join(root, 'opt/i'));
  await symlink('/opt/i/real-init', path.join(root, 'usr/sbin/init'));
  await symlink(`../../${LONG}/real-init`, path.join(root, 'usr/bin/long-link'));
  await writeFile(path.join(root, 'usr/bin/plain'), 'not executable');
  await writeFile(path.join(root, 'etc/os-release'), 'ID=test\n');
});

t.after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

for (const format of ['ustar', 'gnu', 'pax'] as const) {
  t(`a ${format} archive passes through unchanged, its members named and resolved as in the root`, async () => {
    const tarball = path.join(tmp, `${format}.tar`);
    const exclude = format === 'ustar' ? ['--exclude=./usr/bin/long-link'] : [];
    execFileSync('tar', [`--format=${format}`, '--numeric-owner', ...exclude, '-C', path.join(tmp, 'root'), '-cf', tarball, '.']);
    const data = await readFile(tarball);
    const { out, walk } = await walked(data);
    assert.ok(data.subarray(0, out.length).equals(out), 'the members pass through byte for byte');
    assert.ok(data.subarray(out.length).every((b) => b === 0), 'only the end-of-archive blocks and padding are held back');
    const listed = execFileSync('tar', ['-tf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.is(walk.members, listed.length);
    assert.ok(walk.executables.has(`${LONG}/real-init`), `the long name is whole: ${[...walk.executables].join(', ')}`);
    assert.is(walk.resolve('/sbin'), 'usr/sbin');
    assert.is(walk.resolve('/sbin/init'), `${LONG}/real-init`);
    assert.ok(walk.isExecutable('/sbin/init'));
    assert.ok(walk.isExecutable('/bin/sh'));
    if (format !== 'ustar') assert.is(walk.resolve('/usr/bin/long-link'), `${LONG}/real-init`, 'a long link name is whole');
    assert.not.ok(walk.isExecutable('/usr/bin/plain'));
    assert.not.ok(walk.isExecutable('/no/such'));
    assert.is(walk.kept.get('etc/os-release')?.toString(), 'ID=test\n');

    // A file added after the walk makes, with the end blocks, an archive tar reads whole.
    const extended = path.join(tmp, `${format}-plus.tar`);
    await writeFile(extended, Buffer.concat([out, fileEntry('usr/sbin/added', 'hi\n', 0o755), END_OF_ARCHIVE]));
    const again = execFileSync('tar', ['-tvf', extended], { encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.is(again.length, listed.length + 1);
    assert.match(again[again.length - 1]!, /^-rwxr-xr-x root\/root +3 .* \.\/usr\/sbin\/added$/);
  });
}

t('symlink loops and .. above the root resolve as the kernel would', async () => {
  const walk = new TarWalk();
  walk.symlinks.set('a', 'b');
  walk.symlinks.set('b', '/a');
  walk.symlinks.set('up', '../../../usr');
  assert.is(walk.resolve('/a/x'), null);
  assert.is(walk.resolve('/up/bin'), 'usr/bin');
  assert.is(memberPath('./usr//bin/'), 'usr/bin');
  assert.is(memberPath('./'), '');
});

t('not an archive, or a truncated one, is INVALID', async () => {
  for (const data of [Buffer.from('hello\n'.repeat(300)), Buffer.alloc(0)]) {
    const e = await walked(data).catch((x: unknown) => x);
    assert.ok(isBackendError(e, 'INVALID'), String(e));
  }
  const tarball = path.join(tmp, 'ustar.tar');
  const whole = await readFile(tarball);
  const e = await walked(whole.subarray(0, 1536 + 100)).catch((x: unknown) => x);
  assert.ok(isBackendError(e, 'INVALID'), `truncated: ${String(e)}`);
});

t.run();
