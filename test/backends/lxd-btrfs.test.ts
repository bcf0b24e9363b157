/**
 * The conformance suite on LXD's btrfs pool (`atelier-btrfs` from `scripts/lxd-setup.sh`): new
 * workshops get a root disk there (the adapter's `pool` option), so copies are subvolume snapshots
 * and refresh-copies go through rsync, unlike on the `dir` pool `lxd.test.ts` runs it on.
 *
 * Every area runs here, as on `dir` (the issue asks for the whole suite on both pools; all seven
 * areas, 56 tests, took ~130 s on 2 cores before `sharing`, ~245 s with it on the machine it was
 * added on; lifecycle, execution and spawn, which exercise the storage driver most, ~47 s).
 * Without the daemon or the pool: fails in CI, skips elsewhere.
 */
import { suite } from 'uvu';
import { LXD_BTRFS_POOL, lxdAvailable, lxdConformance, lxdPool, lxdUnavailable } from './lxd-env.ts';
import { runConformance } from './conformance.ts';

const avail = await lxdAvailable();
const pool = avail.ok ? await lxdPool(LXD_BTRFS_POOL) : avail;

if (!pool.ok) {
  const t = suite('lxd btrfs');
  lxdUnavailable(t, `lxd conformance on ${LXD_BTRFS_POOL}`, pool.reason);
  t.run();
} else {
  runConformance(`lxd/${LXD_BTRFS_POOL}`, lxdConformance('atl-cb', LXD_BTRFS_POOL));
}
