/**
 * A caller holding an LXD spawn, for `lxd-spawn.test.ts` to kill with SIGKILL: it starts
 * `sleep SECONDS` in the workshop (on a terminal with `tty`), prints `started`, and waits.
 *
 * node --import tsx test/backends/lxd-spawn-holder.ts OWNER SOCKET WORKSHOP SECONDS pipe|tty
 */
import { createLxdBackend } from '../../backends/lxd/index.ts';

const [owner, socket, name, seconds, mode] = process.argv.slice(2) as [string, string, string, string, string];
const b = createLxdBackend({ owner, socket });
const p = await b.spawn(
  { space: 'workshops', name },
  {
    argv: ['sleep', seconds],
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    ...(mode === 'tty' ? { terminal: { cols: 80, rows: 24 } } : {}),
  },
);
process.stdout.write('started\n');
process.exitCode = await p.exit;
