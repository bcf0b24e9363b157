import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createFakeBackend } from '../../backends/fake/index.ts';
import type { FakeBackend } from '../../backends/fake/index.ts';
import type { ObjectRef, Tags } from '../../backends/types.ts';
import { isBackendError } from '../../backends/types.ts';
import { runConformance } from './conformance.ts';

runConformance('fake', async () => {
  const backend = createFakeBackend({ seed: 1 });
  return {
    backend,
    owner: 'alice',
    cleanup: async () => backend.close(),
    plant: async (ref, tags) => backend.plant(ref, { tags: tags ?? {} }),
    registerBase: async (name) => backend.registerBase(name),
  };
});

// ---- fake-only behaviour: controls, trace format, determinism, the shell subset ---------------


const WS = (name: string): ObjectRef => ({ space: 'workshops', name });
const LY = (name: string): ObjectRef => ({ space: 'layers', name });
const tags = (kind: Tags['kind'], op = 'op1', extra: Partial<Tags> = {}): Tags => ({ owner: 'alice', op, kind, ...extra });

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isBackendError(e) ? e.code : String(e);
  }
}

/** A short launch-then-stash story, used to compare runs. */
async function story(b: FakeBackend): Promise<void> {
  await b.ensureProjects('alice');
  await b.create({ target: WS('nav2-1a2b3c4d'), source: { base: 'busybox' }, tags: tags('workshop') });
  await b.start(WS('nav2-1a2b3c4d'));
  await b.exec(WS('nav2-1a2b3c4d'), { script: 'echo ros > "${ATELIER_ROOTFS%/}/etc/sdk"' });
  await b.copy({ source: WS('nav2-1a2b3c4d'), target: LY('ros2-0123456789abcdef'), tags: tags('sdk', 'op2') });
  await b.stop(WS('nav2-1a2b3c4d'));
  await b.copy({ source: WS('nav2-1a2b3c4d'), target: LY('stash-nav2-1a2b3c4d'), tags: tags('stash', 'op3') });
  await b.copy({ source: LY('ros2-0123456789abcdef'), target: WS('nav2-1a2b3c4d'), tags: tags('workshop', 'op4'), refresh: true });
  await b.inspect(WS('nav2-1a2b3c4d'));
  await b.remove(LY('stash-nav2-1a2b3c4d'));
}

const f = suite('fake: controls');

f('trace() lines: mutating calls only by default, failures marked', async () => {
  const b = createFakeBackend({ seed: 1 });
  await story(b);
  await code(b.start(LY('ros2-0123456789abcdef')));
  await b.create({ target: WS('c-1'), source: { object: LY('ros2-0123456789abcdef') }, tags: tags('container') });
  await b.create({ target: WS('nav2-1a2b3c4d'), source: { base: 'busybox' }, tags: tags('workshop'), refresh: true });
  assert.equal(b.trace(), [
    'create workshops/nav2-1a2b3c4d',
    'start workshops/nav2-1a2b3c4d',
    'exec workshops/nav2-1a2b3c4d',
    'copy workshops/nav2-1a2b3c4d -> layers/ros2-0123456789abcdef',
    'stop workshops/nav2-1a2b3c4d',
    'copy workshops/nav2-1a2b3c4d -> layers/stash-nav2-1a2b3c4d',
    'copy! layers/ros2-0123456789abcdef -> workshops/nav2-1a2b3c4d',
    'remove layers/stash-nav2-1a2b3c4d',
    'start layers/ros2-0123456789abcdef !INVALID',
    'create layers/ros2-0123456789abcdef -> workshops/c-1',
    'create! workshops/nav2-1a2b3c4d',
  ]);
  const all = b.trace({ readOnly: true, outcome: false });
  assert.is(all[0], 'ensureProjects alice');
  assert.ok(all.includes('inspect workshops/nav2-1a2b3c4d'));
  assert.ok(all.includes('start layers/ros2-0123456789abcdef'));
  const calls = b.calls;
  assert.is(calls[0]!.n, 1);
  assert.equal(calls.map((c) => c.n), calls.map((_, i) => i + 1));
  const failed = calls.find((c) => !c.ok)!;
  assert.is(failed.kind, 'start');
  assert.is(failed.code, 'INVALID');
  b.clearCalls();
  assert.equal(b.calls, []);
});

f('same seed and calls give the same identities and dump; another seed differs', async () => {
  const [a, b, c] = [createFakeBackend({ seed: 9 }), createFakeBackend({ seed: 9 }), createFakeBackend({ seed: 10 })];
  for (const x of [a, b, c]) await story(x);
  assert.equal(a.dump(), b.dump());
  assert.is(JSON.stringify(a.dump()), JSON.stringify(b.dump()));
  assert.not.equal(a.objects()[0]!.identity, c.objects()[0]!.identity);
  const id = a.objects().find((o) => o.name === 'nav2-1a2b3c4d')!.identity;
  assert.match(id.mac, /^00:16:3e(:[0-9a-f]{2}){3}$/);
});

f('bases: defaults, custom list, unknown base NOT_FOUND', async () => {
  const b = createFakeBackend();
  assert.is(b.defaultBase, 'busybox');
  assert.equal(await b.listBases(), ['busybox', 'ubuntu@24.04']);
  const u = createFakeBackend({ defaultBase: 'alpine', bases: ['debian'] });
  assert.equal(await u.listBases(), ['alpine', 'debian']);
  assert.is(await code(u.create({ target: WS('w'), source: { base: 'busybox' }, tags: tags('workshop') })), 'NOT_FOUND');
  await b.create({ target: WS('w'), source: { base: 'ubuntu@24.04' }, tags: tags('workshop') });
  assert.match((await b.readFile(WS('w'), '/etc/os-release'))!.content!, /ID=ubuntu/);
  assert.is((await b.inspect(WS('w')))!.base, 'ubuntu@24.04');
});

f('baseFingerprint: name and generation; registerBase adds a base or gives one new content, and persists', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-fake-'));
  try {
    const file = join(dir, 'fake.json');
    const b = createFakeBackend({ file });
    assert.is(await b.baseFingerprint('busybox'), 'busybox#1');
    assert.is(await b.baseFingerprint('ubuntu@24.04'), 'ubuntu@24.04#1');
    assert.is(await code(b.baseFingerprint('alpine')), 'NOT_FOUND');
    assert.not.ok('bases' in b.dump(), 'no registered base: the image is as before');
    await b.ensureProjects('alice');
    await b.create({ target: WS('old'), source: { base: 'busybox' }, tags: tags('workshop') });
    b.registerBase('busybox');
    b.registerBase('alpine');
    assert.is(await b.baseFingerprint('busybox'), 'busybox#2');
    assert.is(await b.baseFingerprint('alpine'), 'alpine#1');
    assert.equal(await b.listBases(), ['busybox', 'ubuntu@24.04', 'alpine']);
    await b.create({ target: WS('new'), source: { base: 'busybox' }, tags: tags('workshop') });
    assert.match((await b.readFile(WS('new'), '/etc/os-release'))!.content!, /ATELIER_FAKE_GENERATION=2/);
    assert.not.match((await b.readFile(WS('old'), '/etc/os-release'))!.content!, /GENERATION/);
    const again = createFakeBackend({ file });
    assert.is(await again.baseFingerprint('busybox'), 'busybox#2');
    assert.is(await again.baseFingerprint('alpine'), 'alpine#1');
    assert.throws(() => b.registerBase('bad name'), (e: unknown) => isBackendError(e, 'INVALID'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

f('resetIdentity on the fake: keys derived from the target and the op; the call records it', async () => {
  const b = createFakeBackend();
  await b.ensureProjects('alice');
  await b.create({ target: WS('w'), source: { base: 'busybox' }, tags: tags('workshop') });
  await b.start(WS('w'));
  await b.exec(WS('w'), { script: 'mkdir -p /etc/ssh\necho k > /etc/ssh/ssh_host_ed25519_key\necho p > /etc/ssh/ssh_host_ed25519_key.pub\necho bogus > /etc/ssh/ssh_host_bogus_key' });
  await b.copy({ source: WS('w'), target: LY('l'), tags: tags('sdk', 'op2') });
  const before = b.dump();
  assert.is(await code(b.copy({ source: LY('l'), target: WS('x'), tags: tags('workshop', 'op3'), resetIdentity: true })), 'INVALID');
  assert.equal(b.dump(), before, 'a key type that cannot be made changes nothing');
  await b.exec(WS('w'), { script: 'rm /etc/ssh/ssh_host_bogus_key' });
  await b.copy({ source: WS('w'), target: LY('m'), tags: tags('sdk', 'op4') });
  const made = await b.copy({ source: LY('m'), target: WS('x'), tags: tags('workshop', 'op5'), resetIdentity: true });
  const pub = (await b.readFile(WS('x'), '/etc/ssh/ssh_host_ed25519_key.pub'))!.content!;
  assert.match(pub, /^ssh-ed25519 AAAA\S+ root@x\n$/);
  await b.copy({ source: LY('m'), target: WS('x'), tags: tags('workshop', 'op5'), refresh: true, resetIdentity: true });
  assert.is((await b.readFile(WS('x'), '/etc/ssh/ssh_host_ed25519_key.pub'))!.content, pub, 'a repeated refresh-copy: the same result');
  const again = await b.copy({ source: LY('m'), target: WS('x'), tags: tags('workshop', 'op6'), refresh: true, resetIdentity: true });
  assert.equal(again.identity, made.identity);
  assert.is.not((await b.readFile(WS('x'), '/etc/ssh/ssh_host_ed25519_key.pub'))!.content, pub, 'another op: new keys');
  assert.is(b.calls.filter((c) => c.kind === 'copy' && c.resetIdentity).length, 4);
  assert.ok(b.trace().includes('copy! layers/m -> workshops/x'));
});

f('reboot stops every instance; objects stay', async () => {
  const b = createFakeBackend();
  await story(b);
  await b.start(WS('nav2-1a2b3c4d'));
  await b.create({ target: WS('c-1'), source: { object: LY('ros2-0123456789abcdef') }, tags: tags('container') });
  await b.start(WS('c-1'));
  b.reboot();
  assert.equal(b.objects().map((o) => o.status), ['stopped', 'stopped', 'stopped']);
  assert.is(b.objects().length, 3);
});

f('scratches are ref-counted by transient containers', async () => {
  const b = createFakeBackend();
  await story(b);
  const src = { object: LY('ros2-0123456789abcdef'), scratch: 'alice-scratch' };
  await b.create({ target: WS('c-1'), source: src, tags: tags('container') });
  await b.create({ target: WS('c-2'), source: src, tags: tags('container') });
  assert.equal(b.scratches(), { 'alice-scratch': ['workshops/c-1', 'workshops/c-2'] });
  await b.remove(WS('c-1'));
  assert.equal(b.scratches(), { 'alice-scratch': ['workshops/c-2'] });
  await b.remove(WS('c-2'));
  assert.equal(b.scratches(), {});
});

f('port rules the fake adds: names, kinds and spaces, refresh of a container', async () => {
  const b = createFakeBackend();
  assert.is(await code(b.create({ target: WS('Bad_name'), source: { base: 'busybox' }, tags: tags('workshop') })), 'INVALID');
  assert.is(await code(b.create({ target: WS('-x'), source: { base: 'busybox' }, tags: tags('workshop') })), 'INVALID');
  assert.is(await code(b.create({ target: WS('x'.repeat(64)), source: { base: 'busybox' }, tags: tags('workshop') })), 'INVALID');
  assert.is(await code(b.create({ target: LY('x'), source: { base: 'busybox' }, tags: tags('sdk') })), 'INVALID');
  assert.is(await code(b.create({ target: WS('x'), source: { base: 'busybox' }, tags: tags('sdk') })), 'INVALID');
  await b.create({ target: WS('x'), source: { base: 'busybox' }, tags: tags('workshop') });
  assert.is(await code(b.copy({ source: WS('x'), target: WS('x'), tags: tags('workshop'), refresh: true })), 'INVALID');
  await b.create({ target: WS('c'), source: { object: WS('x') }, tags: tags('container') });
  assert.is(await code(b.copy({ source: WS('x'), target: WS('c'), tags: tags('container'), refresh: true })), 'INVALID');
  assert.is(await code(b.stop(LY('nothing'))), 'NOT_FOUND');
  assert.equal(b.objects().map((o) => o.name), ['c', 'x']);
});

f('the shell: unsupported constructs fail with 127 before doing anything', async () => {
  const b = createFakeBackend();
  await b.create({ target: WS('w'), source: { base: 'busybox' }, tags: tags('workshop') });
  await b.start(WS('w'));
  for (const script of ['echo a > /etc/a\nls /', 'echo a | cat', 'echo $(id)', 'if true; then echo; fi', 'rm -rf /tmp/*', 'cp /a /b']) {
    try {
      await b.exec(WS('w'), { script });
      assert.unreachable(script);
    } catch (e) {
      assert.ok(isBackendError(e, 'EXEC_FAILED'), script);
      assert.is(e.info['exitCode'], 127, script);
      assert.match(String(e.info['stderr']), /not supported by the fake backend's shell/);
    }
  }
  assert.is(await b.readFile(WS('w'), '/etc/a'), null);
});

f('the shell: the documented subset', async () => {
  const b = createFakeBackend();
  const w = WS('w');
  await b.create({ target: w, source: { base: 'busybox' }, tags: tags('workshop') });
  await b.start(w);
  const r = await b.exec(w, {
    env: { SDK: 'ros2' },
    script: `set -eu
# a comment
R="\${ATELIER_ROOTFS%/}"
mkdir -p "$R/opt/$SDK/bin" && touch "$R/opt/$SDK/bin/tool"
chmod 755 "$R/opt/$SDK/bin/tool"; chown -R 1000:1000 "$R/opt/$SDK"
printf '%s=%s\\n' a 1 b 2 > "$R/etc/kv"
echo 'single $SDK' "double $SDK" \${MISSING:-dflt} >> "$R/etc/kv"
ln -s /opt/ros2 "$R/opt/current"
echo via-link > "$R/opt/current/bin/new"
rm -f "$R/etc/hostname" "$R/etc/none"
rm -rf "$R/var"
false || echo recovered
[ -d "$R/opt/ros2" ] && echo is-dir
test -e "$R/etc/hostname" || echo no-hostname
cat "$R/etc/kv" >&2
true`,
  });
  assert.is(r.stdout, 'recovered\nis-dir\nno-hostname\n');
  assert.is(r.stderr, 'a=1\nb=2\nsingle $SDK double ros2 dflt\n');
  const tool = (await b.readFile(w, '/opt/ros2/bin/tool'))!;
  assert.equal({ ...tool }, { type: 'file', mode: 0o755, uid: 1000, gid: 1000, content: '' });
  assert.equal(await b.readFile(w, '/opt/current'), { type: 'symlink', mode: 0o777, uid: 0, gid: 0, content: '/opt/ros2' });
  assert.is((await b.readFile(w, '/opt/ros2/bin/new'))!.content, 'via-link\n');
  assert.is(await b.readFile(w, '/etc/hostname'), null);
  assert.is(await b.readFile(w, '/var/lib'), null);
  assert.is((await b.readFile(w, '/tmp'))!.mode, 0o1777);
  const e = await b.exec(w, { script: 'echo "$UNSET"' }).catch((x: unknown) => x);
  assert.ok(isBackendError(e, 'EXEC_FAILED'));
  assert.is(e.info['exitCode'], 2);
  const x = await b.exec(w, { script: 'exit 3' }).catch((x: unknown) => x);
  assert.ok(isBackendError(x, 'EXEC_FAILED'));
  assert.is(x.info['exitCode'], 3);
});

f('diskSpace: capacity (default 1 TiB) minus the UTF-8 bytes of every tree, scratches once; not enforced', async () => {
  const d0 = await createFakeBackend().diskSpace();
  assert.equal(d0, { where: 'memory', total: 2 ** 40, free: 2 ** 40 });
  const b = createFakeBackend({ capacityBytes: 1_000_000 });
  const w = WS('w');
  await b.create({ target: w, source: { base: 'busybox' }, tags: tags('workshop') });
  const base = (await b.usage('alice'))[0]!.bytes!;
  assert.ok(base > 0, 'a base tree holds some bytes');
  assert.equal(await b.diskSpace(), { where: 'memory', total: 1_000_000, free: 1_000_000 - base });
  await b.start(w);
  await b.exec(w, { script: 'printf "%s" "héllo" > "${ATELIER_ROOTFS%/}/etc/utf8"\nln -s /etc/utf8 "${ATELIER_ROOTFS%/}/etc/link"\nmkdir -p "${ATELIER_ROOTFS%/}/opt/d"' });
  assert.is((await b.usage('alice'))[0]!.bytes, base + 6, 'é is two bytes; symlinks and directories count nothing');
  await b.copy({ source: w, target: LY('l'), tags: tags('sdk') });
  const src = { object: LY('l'), scratch: 'k' };
  await b.create({ target: WS('c-1'), source: src, tags: tags('container') });
  await b.create({ target: WS('c-2'), source: src, tags: tags('container') });
  b.plant(WS('unowned'), { files: { '/': { type: 'dir', mode: 0o755, uid: 0, gid: 0 }, '/f': { type: 'file', mode: 0o644, uid: 0, gid: 0, content: 'abc' } } });
  const used = await b.usage('alice');
  assert.equal(used.map((u) => [u.ref.name, u.bytes]), [['l', base + 6], ['c-1', base + 6], ['c-2', base + 6], ['w', base + 6]]);
  // w, l, the shared scratch once, and the unowned object: every tree the fake holds.
  assert.is((await b.diskSpace()).free, 1_000_000 - 3 * (base + 6) - 3);
  const tiny = createFakeBackend({ capacityBytes: 10 });
  await tiny.create({ target: w, source: { base: 'busybox' }, tags: tags('workshop') });
  assert.equal(await tiny.diskSpace(), { where: 'memory', total: 10, free: 0 });
  for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 60]) {
    assert.throws(() => createFakeBackend({ capacityBytes: bad }), (e: unknown) => isBackendError(e, 'INVALID'), String(bad));
  }
});

f('diskSpace and usage read the environment: not recorded, outside the fault plan, refused only when the fake is down', async () => {
  const b = createFakeBackend();
  await b.create({ target: WS('w'), source: { base: 'busybox' }, tags: tags('workshop') });
  b.clearCalls();
  await b.diskSpace();
  await b.usage('alice');
  assert.equal(b.trace({ readOnly: true }), [], 'not in the call log');
  b.setFaultPlan({ rules: [{ call: '*', when: 'before', action: 'fail', code: 'NO_SPACE' }] });
  await b.diskSpace();
  await b.usage('alice');
  assert.is(await code(b.start(WS('w'))), 'NO_SPACE', "the '*' rule was not spent on them");
  b.setFaultPlan(null);
  b.setAvailable(false);
  assert.is(await code(b.diskSpace()), 'UNAVAILABLE');
  assert.is(await code(b.usage('alice')), 'UNAVAILABLE');
});

f.run();
