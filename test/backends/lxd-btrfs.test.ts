/**
 * The conformance suite on LXD's btrfs pool (`atelier-btrfs` from `scripts/lxd-setup.sh`): new
 * workshops get a root disk there (the adapter's `pool` option), so copies are subvolume snapshots
 * and refresh-copies go through rsync, unlike on the `dir` pool `lxd.test.ts` runs it on.
 *
 * The areas that exercise the storage driver run here: lifecycle (copies, refreshes, removal),
 * execution (hooks, transient containers and their scratch volume on this pool) and spawn. The
 * identity, filesystem and space areas check the adapter's bookkeeping and file API, the same on
 * every pool, and already run on `dir`: leaving them out keeps the LXD tests' time down (measured on
 * 2 cores: these three areas, 26 tests, 47 s; all six, 49 tests, 128 s). `ATELIER_LXD_BTRFS_FULL=1`
 * runs all six. Without the daemon or the pool: fails in CI, skips elsewhere.
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
  runConformance(`lxd/${LXD_BTRFS_POOL}`, lxdConformance('atl-cb', LXD_BTRFS_POOL), { skip: process.env.ATELIER_LXD_BTRFS_FULL ? [] : ['identity', 'filesystem', 'space'] });
}
