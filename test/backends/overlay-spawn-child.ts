/**
 * A child process for `overlay-runtime.test.ts`: it opens the overlay store given on its command
 * line, spawns `argv` in the started workshop `name` and prints `ready <host pid>` once the
 * process runs; then it waits until it is killed. The test SIGKILLs it (as a user's `kill -9` of
 * `atelier exec` would) and checks that nothing it started is left, in the container or on the
 * host.
 *
 * @example
 * ```sh
 * node --import tsx test/backends/overlay-spawn-child.ts ROOT RUNDIR NAME sleep 300
 * ```
 */
import { createOverlayBackend } from '../../backends/overlay/index.ts';

const [root, runDir, name, ...argv] = process.argv.slice(2);
if (!root || !runDir || !name || !argv.length) {
  console.error('usage: overlay-spawn-child.ts ROOT RUNDIR NAME ARGV...');
  process.exit(2);
}
const b = await createOverlayBackend({ root, runDir, runtime: 'runc' });
const p = await b.spawn({ space: 'workshops', name }, { argv, stdout: process.stdout, stderr: process.stderr });
process.stdout.write('ready\n');
await p.exit;
// Only reached when the process ends on its own (the test kills this process long before).
process.stdout.write('ended\n');
