import { LxdClient } from '/work/main/backends/lxd/client.ts';
const c = new LxdClient('/var/lib/lxd/unix.socket');
const P = 'xtest.a', L = 'xtest-l.a';
for (const p of [P, L]) { try { await c.sync('POST', '/1.0/projects', { name: p, config: { 'features.images': 'false', 'features.profiles': 'false' } }); } catch (e) { console.log('proj', (e as any).code); } }
try { await c.sync('POST', '/1.0/projects', { name: P, config: {} }); } catch (e) { console.log('dup proj', (e as any).code, (e as any).message); }
const t0 = Date.now();
await c.async('POST', '/1.0/instances', { name: 'w1', type: 'container', profiles: ['default'], source: { type: 'image', alias: 'busybox' }, config: { 'user.atelier.owner': 'a', 'user.atelier.x': 'y' } }, { project: P });
console.log('create', Date.now() - t0);
try { await c.async('POST', '/1.0/instances', { name: 'w1', type: 'container', profiles: ['default'], source: { type: 'image', alias: 'busybox' } }, { project: P }); } catch (e) { console.log('dup', (e as any).code, (e as any).message); }
try { await c.async('POST', '/1.0/instances', { name: 'w9', type: 'container', profiles: ['default'], source: { type: 'image', alias: 'nope' } }, { project: P }); } catch (e) { console.log('noimg', (e as any).code, (e as any).message); }
await c.async('PUT', '/1.0/instances/w1/state', { action: 'start' }, { project: P });
const ex = await c.async('POST', '/1.0/instances/w1/exec', { command: ['sh', '-eu', '-c', 'echo hi; echo err >&2; mkdir -p /etc/x; echo c > /etc/x/f; chmod 600 /etc/x/f; ln -s /etc/x/f /etc/x/l; exit 3'], environment: { ATELIER_ROOTFS: '/' }, 'wait-for-websocket': false, interactive: false, 'record-output': true }, { project: P }, { allowFailure: true });
console.log('exec', JSON.stringify(ex));
const out = (ex.metadata as any).output;
for (const k of ['1', '2']) { const r = await c.raw('GET', out[k] + '?project=' + P); console.log(k, r.status, JSON.stringify(r.body.toString())); }
for (const p of ['/etc/x/f', '/etc/x/l', '/etc/x', '/nope']) { const r = await c.raw('GET', `/1.0/instances/w1/files?path=${encodeURIComponent(p)}&project=${P}`); console.log(p, r.status, r.headers['x-lxd-type'], r.headers['x-lxd-mode'], r.headers['x-lxd-uid'], r.body.toString().slice(0, 200)); }
// copy running w1 into layers, dropping user.atelier.x and volatile idmap
const t1 = Date.now();
await c.async('POST', '/1.0/instances', { name: 's1', type: 'container', profiles: ['default'], source: { type: 'copy', source: 'w1', project: P, instance_only: true }, config: { 'user.atelier.x': '', 'volatile.idmap.next': '', 'volatile.idmap.base': '', 'boot.autostart': 'false', 'user.atelier.kind': 'stash' } }, { project: L });
console.log('copy running', Date.now() - t1);
const s1 = await c.get<any>('/1.0/instances/s1', { project: L });
console.log(s1.config, s1.status);
try { await c.async('POST', '/1.0/instances', { name: 'w1', type: 'container', profiles: ['default'], source: { type: 'copy', source: 's1', project: L, instance_only: true, refresh: true } }, { project: P }); } catch (e) { console.log('refresh running', (e as any).code, (e as any).message); }
try { await c.async('POST', '/1.0/instances/w1/exec', { command: ['true'], 'wait-for-websocket': false, 'record-output': true }, { project: L }); } catch (e) { console.log('exec missing', (e as any).code, (e as any).message); }
try { await c.async('DELETE', '/1.0/instances/w1', undefined, { project: P }); } catch (e) { console.log('delete running', (e as any).code, (e as any).message); }
await c.async('PUT', '/1.0/instances/w1/state', { action: 'stop', force: true, timeout: 0 }, { project: P });
try { await c.async('POST', '/1.0/instances/w1/exec', { command: ['true'], 'wait-for-websocket': false, 'record-output': true }, { project: P }); } catch (e) { console.log('exec stopped', (e as any).code, (e as any).message); }
const w1 = await c.get<any>('/1.0/instances/w1', { project: P });
const t2 = Date.now();
await c.async('POST', '/1.0/instances', { name: 'w1', type: 'container', profiles: ['default'], source: { type: 'copy', source: 's1', project: L, instance_only: true, refresh: true } }, { project: P });
console.log('refresh', Date.now() - t2);
const w1b = await c.get<any>('/1.0/instances/w1', { project: P });
console.log('before', w1.config, 'after', w1b.config);
// PUT config without volatile keys: are they kept?
const cfg = Object.fromEntries(Object.entries(w1b.config as Record<string,string>).filter(([k]) => !k.startsWith('volatile.')));
cfg['user.atelier.new'] = 'z';
await c.sync('PUT', '/1.0/instances/w1', { ...w1b, config: cfg }, { project: P });
console.log('after PUT', (await c.get<any>('/1.0/instances/w1', { project: P })).config);
console.log('ops', await c.get('/1.0/operations'));
c.close();
