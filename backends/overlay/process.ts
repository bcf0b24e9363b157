/**
 * A process in a running container: `runc exec` with its pid written to a file, a terminal when
 * asked (util-linux `script` gives runc the terminal it wants on its stdin), and a guard that
 * kills the process if the caller dies. Hooks (`exec.ts`) and `spawn` (`spawn.ts`) start theirs
 * here.
 *
 * **No stray process.** `runc exec` forwards the signals it receives to the process, but nothing
 * forwards a SIGKILL: if the caller (the CLI during `atelier exec`) is killed, runc and the process
 * would run on. So runc is started by a small host `sh` (`WRAPPER`) that first forks a guard, a
 * subshell reading a socket only the caller holds (the child's fd 3), ignoring SIGINT, SIGTERM
 * and SIGHUP (a Ctrl-C to the caller's process group does not end it) and holding none of the
 * process's streams, then execs runc. A normal end writes `done` and the guard exits quietly; end-of-file means the
 * caller died, and the guard SIGKILLs the process named by runc's pid file and every process of
 * its session (runc makes it a session leader: its descendants), each only after checking it is
 * in the container's cgroup (a reused pid is never hit), or runc itself when it had not started
 * the process yet; then it removes the launch's directory. One `spawn` from Node per launch: the
 * guard costs a fork of a small `sh`, not a second process start from a large Node heap.
 *
 * **Terminals.** `runc exec -t` makes a pseudo-terminal in the container and wants its own stdin
 * to be a terminal, whose size it copies and follows (SIGWINCH). `script -q -e -c CMD /dev/null`
 * runs CMD on a new pty; CMD sets that pty's size and raw mode, writes its name (`tty`) and execs
 * runc. `resize` is `stty -F <that pty> cols C rows R`: the kernel then sends SIGWINCH to runc,
 * which resizes the container's pty. Both output streams arrive on stdout.
 *
 * @example
 * ```ts
 * const l = launch(runc, 'nav2', { argv: ['id', '-u'], env: [], cwd: '/', user: { uid: 0, gid: 0, groups: [] } }, tmp);
 * l.child.stdout!.pipe(process.stdout);
 * const s = await l.started; // { pid } or { failed, code }
 * const code = await l.exited;
 * ```
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { containerId } from './runtime.ts';
import type { Runc } from './runtime.ts';
import { ensureDir, removeTree, run } from './fsutil.ts';

/** What to run (already resolved against the instance: user ids, a directory that exists). */
export interface ExecSpec {
  readonly argv: readonly string[];
  /** `K=V` entries added to the container's environment (later ones win). */
  readonly env: readonly string[];
  readonly cwd: string;
  readonly user: { readonly uid: number; readonly gid: number; readonly groups: readonly number[] };
  readonly terminal?: { readonly cols: number; readonly rows: number };
}

/** A launched process. */
export interface Launch {
  /** The wrapper `sh` around `runc exec` (or `script` around it): its stdin, stdout and stderr are the process's. */
  readonly child: ChildProcess;
  /** The process's host pid once it runs, or runc's message and status when it never started. */
  readonly started: Promise<{ pid: number } | { failed: string; code: number }>;
  /** The exit status (128 + n for signal n) once the child has ended and its streams closed. */
  readonly exited: Promise<number>;
  /** Signal the process in the container (queued until it has started; ignored once ended). */
  signal(sig: NodeJS.Signals): void;
  /** A new terminal size (without a terminal: nothing). */
  resize(cols: number, rows: number): void;
  /** SIGKILL the process and everything in its session (its descendants), as the guard does. */
  killAll(): void;
}

const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * See the header. `$1` pid file, `$2` the container's cgroup, `$3` the launch directory, then the
 * command (runc, or `script` around it), which replaces this shell once the guard is forked: its
 * pid is the shell's (`$$`), and no shell stays in between. The guard is forked twice so that it
 * is not a child of that command (`script` waits for every child it has before it exits). `read`
 * is a builtin: the guard's walk of /proc forks nothing.
 */
const WRAPPER = `f=$1 cg=$2 d=$3 r=$$; shift 3
( (
  trap '' INT TERM HUP
  exec >/dev/null 2>&1 </dev/null
  incg() { while IFS= read -r l; do case $l in *":$cg") return 0 ;; esac; done < "$1/cgroup"; return 1; }
  while read -r w <&3; do [ "$w" = done ] && exit 0; done
  i=0
  while [ ! -s "$f" ] && kill -0 "$r" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  if [ -s "$f" ]; then
    read -r p < "$f"
    for pass in 1 2; do
      for s in /proc/[0-9]*; do
        { read -r st < "$s/stat"; } 2>/dev/null || continue
        set -- \${st##*) }
        [ "$4" = "$p" ] || [ "\${s#/proc/}" = "$p" ] || continue
        incg "$s" 2>/dev/null && kill -9 "\${s#/proc/}"
      done
    done
  else
    kill -9 "$r"
  fi
  rm -rf "$d"
) & )
exec 3<&- "$@"`;

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Start `spec` in `name`'s running container. Launch directories live under `tmpRoot`. */
export async function launch(runc: Runc, name: string, spec: ExecSpec, tmpRoot: string): Promise<Launch> {
  const id = containerId(name);
  await ensureDir(tmpRoot, 0o700);
  const dir = await mkdtemp(join(tmpRoot, 'x-'));
  const pidFile = join(dir, 'pid');
  const args = ['--root', runc.stateRoot, 'exec', '--pid-file', pidFile, '--cwd', spec.cwd, '--user', `${spec.user.uid}:${spec.user.gid}`];
  for (const g of spec.user.groups) args.push('--additional-gids', String(g));
  for (const e of spec.env) args.push('--env', e);
  if (spec.terminal) args.push('--tty');
  args.push(id, ...spec.argv);

  const ttyFile = join(dir, 'tty');
  const errFile = join(dir, 'err');
  let command: string[];
  if (spec.terminal) {
    const { cols, rows } = spec.terminal;
    const cmd = `stty cols ${cols} rows ${rows} raw -echo 2>/dev/null; tty > ${quote(ttyFile)}; exec ${[runc.tools.runc, ...args].map(quote).join(' ')} 2>${quote(errFile)}`;
    command = ['script', '-q', '-e', '-c', cmd, '/dev/null'];
  } else {
    command = [runc.tools.runc, ...args];
  }
  const child = spawn('/bin/sh', ['-c', WRAPPER, 'atelier-exec', pidFile, runc.cgroupOf(id), dir, ...command], {
    env: { PATH: HOST_PATH, SHELL: '/bin/sh' },
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
  });
  const control = child.stdio[3] as NodeJS.WritableStream & { on(e: 'error', f: () => void): void };
  control.on('error', () => undefined);
  let standDown = false;
  const release = () => {
    if (standDown) return;
    standDown = true;
    control.end('done\n');
  };
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => {
      release();
      reject(e);
    });
    // Ended once runc has exited and the process's output streams are closed: not waiting for
    // 'close', which also waits for the guard to read `done` and let go of its socket.
    let status: number | null = null;
    let open = 2;
    const settle = () => {
      if (status !== null && open === 0) resolve(status);
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on('close', () => {
        open--;
        settle();
      });
    }
    child.on('exit', (code, sig) => {
      release();
      status = code ?? 128 + (sig ? (constants.signals[sig] ?? 9) : 0);
      settle();
    });
  });
  let pid: number | null = null;
  let tty: string | null = null;
  let pendingSize: [number, number] | null = null;
  const pendingSignals: NodeJS.Signals[] = [];
  let killAllPending = false;
  let ended = false;

  const applySize = (cols: number, rows: number) => {
    if (tty) void run('stty', ['-F', tty, 'cols', String(cols), 'rows', String(rows)], { allowFailure: true }).catch(() => undefined);
    else pendingSize = [cols, rows];
  };
  const sendSignal = (sig: NodeJS.Signals) => {
    if (ended) return;
    if (pid === null) {
      pendingSignals.push(sig);
      return;
    }
    try {
      process.kill(pid, sig);
    } catch {
      /* it has just ended */
    }
  };

  const started = waitForPid(dir, pidFile, exited).then(async (p) => {
    if (p === null) {
      const code = await exited.catch(() => 255);
      const failed = spec.terminal ? await readFile(errFile, 'utf8').catch(() => '') : '';
      return { failed, code };
    }
    pid = p;
    if (spec.terminal) {
      tty = (await readFile(ttyFile, 'utf8').catch(() => '')).trim() || null;
      if (pendingSize) applySize(...pendingSize);
    }
    for (const s of pendingSignals.splice(0)) sendSignal(s);
    if (killAllPending) void killSession(p, runc.cgroupOf(id));
    return { pid: p };
  });
  // Once the child has ended (and its pid file was read), the launch directory goes, without
  // holding up the exit status.
  const finished = exited.catch(() => -1).then(async (n) => {
    ended = true;
    await started.catch(() => undefined);
    void removeTree(dir).catch(() => undefined);
    return n;
  });

  return {
    child,
    started,
    exited: finished.then(async (n) => (n === -1 ? exited : n)),
    signal: sendSignal,
    resize: (cols, rows) => {
      if (spec.terminal && !ended) applySize(cols, rows);
    },
    killAll: () => {
      if (pid !== null) void killSession(pid, runc.cgroupOf(id));
      else killAllPending = true;
    },
  };
}

/**
 * SIGKILL `leader` and every process in its session that is in the container's cgroup (what the
 * guard does in sh): a hook's `sleep` under its shell must not outlive the hook's timeout.
 */
export async function killSession(leader: number, cgroup: string): Promise<void> {
  for (let pass = 0; pass < 2; pass++) {
    for (const e of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(e)) continue;
      const stat = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
      const session = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3];
      if (Number(e) !== leader && session !== String(leader)) continue;
      const cg = await readFile(`/proc/${e}/cgroup`, 'utf8').catch(() => '');
      if (!cg.split('\n').some((l) => l.endsWith(`:${cgroup}`))) continue;
      try {
        process.kill(Number(e), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

/** runc writes its pid file (atomically, by rename) once the process runs: watch for it, or for the child's end. */
function waitForPid(dir: string, pidFile: string, exited: Promise<number>): Promise<number | null> {
  return new Promise((resolve) => {
    let done = false;
    const check = async (): Promise<boolean> => {
      const text = await readFile(pidFile, 'utf8').catch(() => '');
      const n = Number(text.trim());
      if (!done && text && Number.isInteger(n) && n > 0) {
        finish(n);
        return true;
      }
      return false;
    };
    const finish = (v: number | null) => {
      if (done) return;
      done = true;
      watcher?.close();
      clearInterval(timer);
      resolve(v);
    };
    let watcher: ReturnType<typeof watch> | undefined;
    try {
      watcher = watch(dir, () => void check());
      watcher.on('error', () => undefined);
    } catch {
      watcher = undefined;
    }
    // inotify is enough on a local run directory; the poll is for file systems without it.
    const timer = setInterval(() => void check(), 50);
    void check();
    void exited.then(
      async () => {
        if (!(await check())) finish(null);
      },
      () => finish(null),
    );
  });
}
