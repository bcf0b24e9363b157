/**
 * The fake backend's shell: interprets hook scripts against an in-memory root filesystem so hooks
 * written for real `sh -eu` run unchanged on the fake. It models a deliberately small subset; a script
 * that uses anything else fails with exit 127 *before running anything*, saying the fake's shell does
 * not support it (write the hook in the subset, or test it against a real backend).
 *
 * ## The supported subset
 * - One command per line, or several joined by `&&`, `||` and `;`. Blank lines and `#` comments
 *   (also after a command). A line ending in `\` or inside quotes continues on the next line.
 * - Words: unquoted, `'single-quoted'` (literal), `"double-quoted"` (with `\"`, `\\`, `\$`), `\x`.
 *   Expansion of `$NAME`, `${NAME}`, `${NAME%suffix}`, `${NAME%%suffix}`, `${NAME#prefix}`,
 *   `${NAME##prefix}`, `${NAME:-default}`, `${NAME-default}` (literal patterns only); unquoted
 *   expansions are split on whitespace. `ATELIER_ROOTFS` is `/`, `HOME` is `/root`, plus the
 *   request's `env`. Scripts run with `-eu` as the port says: an unset variable ends the script
 *   with exit 2.
 * - Redirections on any command: `> PATH`, `>> PATH`, `>&2`, `1>&2`, `2>&1`, `2> PATH`, `2>> PATH`;
 *   `/dev/null`, `/dev/stdout`, `/dev/stderr` are understood.
 * - Commands: `set [-e|-u|-eu|+e|+u]`, `NAME=value`, `export NAME[=value]`, `echo [-n] WORDS`
 *   (no backslash escapes: use printf), `printf FMT ARGS` (`%s`, `%d`, `%%`, `\n`, `\t`, `\\`; the
 *   format repeats for extra arguments), `mkdir [-p] [-m MODE] PATH...`, `rm [-f] [-r|-R] PATH...`,
 *   `rmdir PATH...`, `touch PATH...`, `chmod [-R] OCTAL PATH...`, `chown [-R] [-h] UID[:GID] PATH...`
 *   (numeric ids or `root`), `ln -s [-f] TARGET PATH`, `cat PATH...`, `test`/`[` (`-e -f -d -L -s
 *   -n -z`, `=`, `!=`, `!`), `true`, `false`, `:`, `exit [N]`.
 * - Not supported (exit 127): pipes, `$(...)`, backticks, globs, `if`/`for`/`while`/`case`,
 *   functions, subshells, `<`, here-documents, background jobs, any other command.
 * - Paths: relative paths are taken from `/`; symlinks are followed as the kernel would.
 *
 * @example
 * ```ts
 * const tree = baseTree('busybox');
 * const r = runScript(tree, 'set -eu\necho hi > "${ATELIER_ROOTFS%/}/etc/motd"', {});
 * r.exitCode; // 0, and tree['/etc/motd'].content === 'hi\n'
 * ```
 */
import type { ExecResult } from '../types.ts';
import type { FileTree } from './rootfs.ts';
import { FsError, newFile, parentOf, resolvePath } from './rootfs.ts';
import type { AndOrList, Command, Redirect, Word } from './shell-parse.ts';
import { parseScript, Unsupported } from './shell-parse.ts';
import { COMMANDS, ExitRequest, type ShellState } from './shell-commands.ts';

export type { ShellState };

/** Where one file descriptor's output goes. */
type Sink = 'stdout' | 'stderr' | 'null' | { path: string };

/** Thrown to end the script: `exit N`, `set -e` after a failure, an unset variable under `-u`. */
class ExitSignal {
  constructor(readonly code: number) {}
}

function expandWord(word: Word, st: ShellState, line: number): string[] {
  const fields: string[] = [];
  let cur = '';
  let have = false; // whether `cur` is a field even when empty ("" counts, an empty $X does not)
  for (const seg of word) {
    if (seg.kind === 'lit') {
      cur += seg.text;
      have = true;
      continue;
    }
    let value = st.vars[seg.name];
    if (seg.op === ':-' && (value === undefined || value === '')) value = seg.arg ?? '';
    else if (seg.op === '-' && value === undefined) value = seg.arg ?? '';
    if (value === undefined) {
      if (st.nounset) throw new UnsetVariable(seg.name, line);
      value = '';
    }
    const arg = seg.arg ?? '';
    if ((seg.op === '%' || seg.op === '%%') && arg !== '' && value.endsWith(arg)) value = value.slice(0, -arg.length);
    if ((seg.op === '#' || seg.op === '##') && arg !== '' && value.startsWith(arg)) value = value.slice(arg.length);
    if (seg.quoted) {
      cur += value;
      have = true;
      continue;
    }
    const parts = value.split(/[ \t\n]+/);
    parts.forEach((p, i) => {
      if (i > 0) {
        if (have || cur !== '') fields.push(cur);
        cur = '';
        have = false;
      }
      cur += p;
      if (p !== '') have = true;
    });
  }
  if (have || cur !== '') fields.push(cur);
  return fields;
}

class UnsetVariable extends Error {
  constructor(name: string, line: number) {
    super(`sh: line ${line}: ${name}: parameter not set`);
  }
}

/** Run one command with its redirections; returns its status. */
function runCommand(cmd: Command, tree: FileTree, st: ShellState, out: { stdout: string; stderr: string }): number {
  const words = cmd.words.flatMap((w) => expandWord(w, st, cmd.line));
  const fds: Record<1 | 2, Sink> = { 1: 'stdout', 2: 'stderr' };
  const write = (fd: 1 | 2, text: string) => {
    const sink = fds[fd];
    if (sink === 'stdout') out.stdout += text;
    else if (sink === 'stderr') out.stderr += text;
    else if (sink !== 'null') tree[sink.path]!.content += text;
  };
  for (const r of cmd.redirects) {
    const failed = openRedirect(r, fds, tree, st, cmd.line);
    if (failed) {
      out.stderr += `sh: line ${cmd.line}: ${failed}\n`;
      return 2;
    }
  }
  if (words.length === 0) return 0;
  const [name, ...args] = words as [string, ...string[]];
  const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(name);
  if (assignment) {
    if (args.length > 0) throw new Unsupported(cmd.line, `a command prefixed with an assignment (${name} ${args[0]})`);
    st.vars[assignment[1]!] = assignment[2]!;
    return 0;
  }
  const fn = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!fn) throw new Unsupported(cmd.line, `the command "${name}"`);
  try {
    return fn({ args, tree, shell: st, line: cmd.line, write });
  } catch (e) {
    if (e instanceof FsError) {
      write(2, `${name}: ${e.message}\n`);
      return 1;
    }
    if (e instanceof ExitRequest) throw new ExitSignal(e.code);
    throw e;
  }
}

/** Apply one redirection; returns an error message when the target cannot be opened. */
function openRedirect(r: Redirect, fds: Record<1 | 2, Sink>, tree: FileTree, st: ShellState, line: number): string | null {
  if (r.op === 'dup') {
    fds[r.fd] = fds[r.target as 1 | 2];
    return null;
  }
  const fields = expandWord(r.target as Word, st, line);
  if (fields.length !== 1) return `${fields.join(' ')}: ambiguous redirect`;
  const raw = fields[0]!;
  if (raw === '/dev/null') return (fds[r.fd] = 'null'), null;
  if (raw === '/dev/stdout' || raw === '/dev/stderr') return (fds[r.fd] = raw === '/dev/stdout' ? fds[1] : fds[2]), null;
  let path: string;
  try {
    path = resolvePath(tree, raw, true);
  } catch (e) {
    if (e instanceof FsError) return `cannot create ${raw}: ${e.message}`;
    throw e;
  }
  const existing = tree[path];
  if (existing?.type === 'dir') return `cannot create ${raw}: Is a directory`;
  if (!existing) {
    if (tree[parentOf(path)]?.type !== 'dir') return `cannot create ${raw}: Directory nonexistent`;
    tree[path] = newFile('');
  } else if (r.op === '>') existing.content = '';
  fds[r.fd] = { path };
  return null;
}

/** Reject unknown commands before anything runs (names hidden behind an expansion are checked later). */
function checkCommandNames(list: AndOrList): void {
  for (const cmd of [list.first, ...list.rest.map((r) => r.cmd)]) {
    const first = cmd.words[0]!;
    if (!first.every((s) => s.kind === 'lit')) continue;
    const name = first.map((s) => (s.kind === 'lit' ? s.text : '')).join('');
    if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(name) && !Object.hasOwn(COMMANDS, name)) throw new Unsupported(cmd.line, `the command "${name}"`);
  }
}

/** Run an and-or list: `&&` runs the next command on success, `||` on failure. */
function runList(list: AndOrList, tree: FileTree, st: ShellState, out: { stdout: string; stderr: string }): void {
  let status = runCommand(list.first, tree, st, out);
  let last = list.rest.length === 0;
  for (let i = 0; i < list.rest.length; i++) {
    const { op, cmd } = list.rest[i]!;
    if ((op === '&&') === (status === 0)) {
      status = runCommand(cmd, tree, st, out);
      last = i === list.rest.length - 1;
    }
  }
  st.status = status;
  // As in sh: `set -e` ignores a failure of any command in an and-or list except the last one.
  if (status !== 0 && st.errexit && last) throw new ExitSignal(status);
}

/**
 * Run `script` against `tree` (mutated in place: a failing script keeps what it did before failing,
 * as a real shell would). Returns the exit status and output; never throws for script errors.
 */
export function runScript(tree: FileTree, script: string, env: Readonly<Record<string, string>>, opts: { errexit?: boolean } = {}): ExecResult {
  const out = { stdout: '', stderr: '' };
  let lists: AndOrList[];
  try {
    lists = parseScript(script);
    lists.forEach(checkCommandNames);
  } catch (e) {
    if (e instanceof Unsupported) return { exitCode: 127, stdout: '', stderr: `sh: ${e.message}\n` };
    throw e;
  }
  const st: ShellState = {
    vars: { HOME: '/root', PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env, ATELIER_ROOTFS: '/' },
    errexit: opts.errexit ?? true,
    nounset: opts.errexit ?? true,
    status: 0,
  };
  try {
    for (const list of lists) runList(list, tree, st, out);
    // A hook (`-eu`) that got here succeeded; a plain `sh -c` ends with its last command's status.
    return { exitCode: st.errexit ? 0 : st.status, ...out };
  } catch (e) {
    if (e instanceof ExitSignal) return { exitCode: e.code, ...out };
    if (e instanceof UnsetVariable) return { exitCode: 2, stdout: out.stdout, stderr: out.stderr + e.message + '\n' };
    // A command name only known once expanded (`$CMD args`) is found unsupported at run time.
    if (e instanceof Unsupported) return { exitCode: 127, stdout: out.stdout, stderr: `${out.stderr}sh: ${e.message}\n` };
    throw e;
  }
}
