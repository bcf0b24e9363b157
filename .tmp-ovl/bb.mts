import { buildDefaultBase } from '/work/main/backends/overlay/bases.ts';
let t = Date.now();
await buildDefaultBase('/tmp/ovs/bb', true);
console.log('build', Date.now() - t);
import lockfile from 'proper-lockfile';
t = Date.now();
for (let i = 0; i < 20; i++) { const r = await lockfile.lock('/tmp/ovs/lk', { realpath: false, stale: 30000, lockfilePath: '/tmp/ovs/lk' }); await r(); }
console.log('lock avg', (Date.now() - t) / 20);
