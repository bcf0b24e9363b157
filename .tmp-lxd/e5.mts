import { createLxdBackend } from '/work/main/backends/lxd/index.ts';
import { purgeOwner, uniqueOwner } from '/work/main/test/backends/lxd-env.ts';
const T = async <X>(m: string, f: () => Promise<X>) => { const t = performance.now(); const r = await f(); console.log(m, Math.round(performance.now() - t)); return r; };
for (let i = 0; i < 2; i++) {
const owner = uniqueOwner('atl-p');
const b = createLxdBackend({ owner, stopTimeoutS: 0 });
await T('ensure', () => b.ensureProjects(owner));
const ws = { space: 'workshops', name: 'w1' } as const;
await T('create', () => b.create({ target: ws, source: { base: 'busybox' }, tags: { owner, op: 'o', kind: 'workshop' } }));
await T('start', () => b.start(ws));
await T('exec', () => b.exec(ws, { script: 'true' }));
await T('copy', () => b.copy({ source: ws, target: { space: 'layers', name: 'l1' }, tags: { owner, op: 'o2', kind: 'sdk' } }));
await T('stop', () => b.stop(ws));
await T('remove', () => b.remove(ws));
await T('inspect', () => b.inspect(ws));
await T('list', () => b.list(owner));
await b.close();
await T('purge', () => purgeOwner(owner));
}
