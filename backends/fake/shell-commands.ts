/**
 * The commands the fake's shell knows (see `shell.ts` for the subset). Each behaves like its
 * busybox/coreutils namesake for the options listed there, with the same exit statuses (0 success,
 * 1 failure, 2 misuse), so a hook that fails on a real backend fails the same way on the fake.
 * Errors on paths are thrown as `FsError` and printed as `NAME: message` by the interpreter.
 *
 * @example
 * ```ts
 * COMMANDS['mkdir']!({ args: ['-p', '/opt/x'], tree, shell, line: 1, write }); // 0
 * ```
 */
import type { FakeFile, FileTree } from './rootfs.ts';
import { baseName, descendants, FsError, newDir, newFile, newSymlink, parentOf, resolvePath } from './rootfs.ts';
import { Unsupported } from './shell-parse.ts';

/** The interpreter's state a script runs with (`shell.ts`): variables, `set -e`/`-u`, the last status. */
export interface ShellState {
  vars: Record<string, string>;
  errexit: boolean;
  nounset: boolean;
  status: number;
}

export interface CommandContext {
  readonly args: string[];
  readonly tree: FileTree;
  readonly shell: ShellState;
  readonly line: number;
  write(fd: 1 | 2, text: string): void;
}

/** A command returns its exit status. */
export type CommandFn = (ctx: CommandContext) => number;

/** Thrown by the `exit` builtin; the interpreter ends the script with `code`. */
export class ExitRequest {
  constructor(readonly code: number) {}
}

/** Split leading `-abc` options from operands. Unknown options are unsupported (exit 127). */
function options(ctx: CommandContext, name: string, allowed: string, withValue = ''): { flags: Set<string>; values: Record<string, string>; rest: string[] } {
  const flags = new Set<string>();
  const values: Record<string, string> = {};
  const args = [...ctx.args];
  while (args.length > 0 && /^-[A-Za-z]/.test(args[0]!)) {
    const a = args.shift()!;
    for (let i = 1; i < a.length; i++) {
      const f = a[i]!;
      if (withValue.includes(f)) {
        values[f] = a.slice(i + 1) || (args.shift() ?? '');
        break;
      }
      if (!allowed.includes(f)) throw new Unsupported(ctx.line, `the option -${f} of ${name}`);
      flags.add(f);
    }
  }
  if (args[0] === '--') args.shift();
  return { flags, values, rest: args };
}

/** Run `fn` on each operand, printing failures and returning 1 if any failed (like coreutils). */
function eachPath(ctx: CommandContext, name: string, paths: string[], fn: (raw: string) => void): number {
  if (paths.length === 0) throw new FsError('missing operand');
  let status = 0;
  for (const raw of paths) {
    try {
      fn(raw);
    } catch (e) {
      if (!(e instanceof FsError)) throw e;
      ctx.write(2, `${name}: ${e.message}\n`);
      status = 1;
    }
  }
  return status;
}

function lookup(tree: FileTree, raw: string, follow: boolean): { path: string; entry: FakeFile | undefined } {
  const path = resolvePath(tree, raw, follow);
  return { path, entry: tree[path] };
}

function requireParentDir(tree: FileTree, path: string, raw: string, what: string): void {
  const parent = tree[parentOf(path)];
  if (!parent) throw new FsError(`${what} '${raw}': No such file or directory`);
  if (parent.type !== 'dir') throw new FsError(`${what} '${raw}': Not a directory`);
}

function removeTree(tree: FileTree, path: string): void {
  for (const p of descendants(tree, path)) delete tree[p];
  delete tree[path];
}

function parseMode(ctx: CommandContext, name: string, mode: string): number {
  if (!/^[0-7]{1,4}$/.test(mode)) throw new Unsupported(ctx.line, `the mode "${mode}" of ${name} (only octal modes are)`);
  return parseInt(mode, 8);
}

function parseId(spec: string, what: string): number {
  if (spec === 'root') return 0;
  if (/^[0-9]+$/.test(spec)) return Number(spec);
  throw new FsError(`unknown ${what} ${spec} (the fake knows only numeric ids and root)`);
}

/** `printf` formatting: one pass over the format, consuming arguments from `args[at]`. */
function formatOnce(fmt: string, args: string[], at: number): [string, number] {
  let out = '';
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i]!;
    if (c === '\\') {
      const n = fmt[++i];
      out += n === 'n' ? '\n' : n === 't' ? '\t' : n === '\\' ? '\\' : `\\${n ?? ''}`;
    } else if (c === '%') {
      const n = fmt[++i];
      if (n === '%') out += '%';
      else if (n === 's') out += args[at++] ?? '';
      else if (n === 'd') out += String(parseInt(args[at++] ?? '0', 10) || 0);
      else throw new FsError(`%${n ?? ''}: the fake's printf supports only %s, %d and %%`);
    } else out += c;
  }
  return [out, at];
}

function evalTest(tree: FileTree, a: string[]): boolean | null {
  if (a[0] === '!') {
    const r = evalTest(tree, a.slice(1));
    return r === null ? null : !r;
  }
  if (a.length === 0) return false;
  if (a.length === 1) return a[0] !== '';
  if (a.length === 2) {
    const [op, v] = a as [string, string];
    const at = (follow: boolean) => tree[resolvePath(tree, v, follow)];
    switch (op) {
      case '-n': return v !== '';
      case '-z': return v === '';
      case '-e': return at(true) !== undefined;
      case '-f': return at(true)?.type === 'file';
      case '-d': return at(true)?.type === 'dir';
      case '-L': case '-h': return at(false)?.type === 'symlink';
      case '-s': return (at(true)?.content ?? '').length > 0;
      default: return null;
    }
  }
  if (a.length === 3) {
    const [l, op, r] = a as [string, string, string];
    const nums = () => [Number(l), Number(r)] as const;
    switch (op) {
      case '=': return l === r;
      case '!=': return l !== r;
      case '-eq': return nums()[0] === nums()[1];
      case '-ne': return nums()[0] !== nums()[1];
      case '-lt': return nums()[0] < nums()[1];
      case '-gt': return nums()[0] > nums()[1];
      default: return null;
    }
  }
  return null;
}

function test(ctx: CommandContext, name: string): number {
  const args = [...ctx.args];
  if (name === '[' && args.pop() !== ']') {
    ctx.write(2, `[: missing ]\n`);
    return 2;
  }
  const r = evalTest(ctx.tree, args);
  if (r === null) throw new Unsupported(ctx.line, `the test expression "${args.join(' ')}"`);
  return r ? 0 : 1;
}

export const COMMANDS: Record<string, CommandFn> = {
  true: () => 0,
  ':': () => 0,
  false: () => 1,
  exit: (ctx) => {
    throw new ExitRequest(ctx.args[0] === undefined ? ctx.shell.status : Number(ctx.args[0]) & 255);
  },
  set: (ctx) => {
    for (const a of ctx.args) {
      if (!/^[-+][eux]+$/.test(a)) throw new Unsupported(ctx.line, `set ${a} (only -e, -u, -x and their + forms are)`);
      const on = a[0] === '-';
      if (a.includes('e')) ctx.shell.errexit = on;
      if (a.includes('u')) ctx.shell.nounset = on;
      // -x (tracing) is accepted and ignored: it only changes stderr.
    }
    return 0;
  },
  export: (ctx) => {
    for (const a of ctx.args) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/s.exec(a);
      if (!m) throw new FsError(`${a}: bad variable name`);
      if (m[2] !== undefined) ctx.shell.vars[m[1]!] = m[2];
    }
    return 0;
  },
  echo: (ctx) => {
    const noNewline = ctx.args[0] === '-n';
    const words = noNewline ? ctx.args.slice(1) : ctx.args;
    ctx.write(1, words.join(' ') + (noNewline ? '' : '\n'));
    return 0;
  },
  printf: (ctx) => {
    const [fmt, ...args] = ctx.args;
    if (fmt === undefined) throw new FsError('usage: printf FORMAT [ARGUMENT...]');
    let [text, at] = formatOnce(fmt, args, 0);
    // POSIX: the format is reused while arguments remain (only if it consumes any).
    while (at > 0 && at < args.length) {
      const [more, next] = formatOnce(fmt, args, at);
      text += more;
      at = next;
    }
    ctx.write(1, text);
    return 0;
  },
  mkdir: (ctx) => {
    const { flags, values, rest } = options(ctx, 'mkdir', 'p', 'm');
    const mode = values['m'] !== undefined ? parseMode(ctx, 'mkdir', values['m']) : 0o755;
    return eachPath(ctx, 'mkdir', rest, (raw) => {
      const { path, entry } = lookup(ctx.tree, raw, true);
      if (entry) {
        if (flags.has('p') && entry.type === 'dir') return;
        throw new FsError(`cannot create directory '${raw}': File exists`);
      }
      if (!flags.has('p')) requireParentDir(ctx.tree, path, raw, 'cannot create directory');
      const parts = path.split('/').filter(Boolean);
      for (let i = 1; i <= parts.length; i++) {
        const p = resolvePath(ctx.tree, '/' + parts.slice(0, i).join('/'), true);
        const e = ctx.tree[p];
        if (e && e.type !== 'dir') throw new FsError(`cannot create directory '${raw}': Not a directory`);
        if (!e) ctx.tree[p] = newDir(i === parts.length ? mode : 0o755);
      }
    });
  },
  rm: (ctx) => {
    const { flags, rest } = options(ctx, 'rm', 'frR');
    const force = flags.has('f');
    if (rest.length === 0 && force) return 0;
    return eachPath(ctx, 'rm', rest, (raw) => {
      const { path, entry } = lookup(ctx.tree, raw, false);
      if (path === '/') throw new FsError(`it is dangerous to operate recursively on '/'`);
      if (!entry) {
        if (force) return;
        throw new FsError(`cannot remove '${raw}': No such file or directory`);
      }
      if (entry.type === 'dir' && !flags.has('r') && !flags.has('R')) throw new FsError(`cannot remove '${raw}': Is a directory`);
      removeTree(ctx.tree, path);
    });
  },
  rmdir: (ctx) =>
    eachPath(ctx, 'rmdir', options(ctx, 'rmdir', '').rest, (raw) => {
      const { path, entry } = lookup(ctx.tree, raw, false);
      if (!entry) throw new FsError(`'${raw}': No such file or directory`);
      if (entry.type !== 'dir') throw new FsError(`'${raw}': Not a directory`);
      if (descendants(ctx.tree, path).length > 0) throw new FsError(`'${raw}': Directory not empty`);
      delete ctx.tree[path];
    }),
  touch: (ctx) =>
    eachPath(ctx, 'touch', options(ctx, 'touch', '').rest, (raw) => {
      const { path, entry } = lookup(ctx.tree, raw, true);
      if (entry) return;
      requireParentDir(ctx.tree, path, raw, 'cannot touch');
      ctx.tree[path] = newFile('');
    }),
  chmod: (ctx) => {
    const { flags, rest } = options(ctx, 'chmod', 'R');
    const [modeText, ...paths] = rest;
    const mode = parseMode(ctx, 'chmod', modeText ?? '');
    return eachPath(ctx, 'chmod', paths, (raw) => {
      const { path, entry } = lookup(ctx.tree, raw, true);
      if (!entry) throw new FsError(`cannot access '${raw}': No such file or directory`);
      entry.mode = mode;
      if (flags.has('R') && entry.type === 'dir') {
        for (const p of descendants(ctx.tree, path)) if (ctx.tree[p]!.type !== 'symlink') ctx.tree[p]!.mode = mode;
      }
    });
  },
  chown: (ctx) => {
    const { flags, rest } = options(ctx, 'chown', 'Rh');
    const [spec, ...paths] = rest;
    const [u, g] = (spec ?? '').split(/[:.]/);
    const uid = u === '' || u === undefined ? undefined : parseId(u, 'user');
    const gid = g === '' || g === undefined ? undefined : parseId(g, 'group');
    const apply = (e: FakeFile) => {
      if (uid !== undefined) e.uid = uid;
      if (gid !== undefined) e.gid = gid;
    };
    return eachPath(ctx, 'chown', paths, (raw) => {
      const { path, entry } = lookup(ctx.tree, raw, !flags.has('h'));
      if (!entry) throw new FsError(`cannot access '${raw}': No such file or directory`);
      apply(entry);
      if (flags.has('R') && entry.type === 'dir') for (const p of descendants(ctx.tree, path)) apply(ctx.tree[p]!);
    });
  },
  ln: (ctx) => {
    const { flags, rest } = options(ctx, 'ln', 'sfn');
    if (!flags.has('s')) throw new Unsupported(ctx.line, 'hard links (ln without -s)');
    if (rest.length < 1 || rest.length > 2) throw new FsError('usage: ln -s [-f] TARGET LINK');
    const target = rest[0]!;
    const raw = rest[1] ?? baseName(target);
    let { path, entry } = lookup(ctx.tree, raw, false);
    const through = flags.has('n') ? entry : ctx.tree[resolvePath(ctx.tree, raw, true)];
    if (through?.type === 'dir') {
      path = resolvePath(ctx.tree, `${resolvePath(ctx.tree, raw, true)}/${baseName(target)}`, false);
      entry = ctx.tree[path];
    }
    if (entry) {
      if (!flags.has('f') || entry.type === 'dir') throw new FsError(`failed to create symbolic link '${raw}': File exists`);
      delete ctx.tree[path];
    }
    requireParentDir(ctx.tree, path, raw, 'failed to create symbolic link');
    ctx.tree[path] = newSymlink(target);
    return 0;
  },
  cat: (ctx) =>
    eachPath(ctx, 'cat', options(ctx, 'cat', '').rest, (raw) => {
      const { entry } = lookup(ctx.tree, raw, true);
      if (!entry) throw new FsError(`${raw}: No such file or directory`);
      if (entry.type === 'dir') throw new FsError(`${raw}: Is a directory`);
      ctx.write(1, entry.content ?? '');
    }),
  test: (ctx) => test(ctx, 'test'),
  '[': (ctx) => test(ctx, '['),
};
