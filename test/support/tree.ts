/**
 * A directory tree as a comparable value: what "writes nothing" and "an untouched tree" are checked
 * against.
 *
 * @example
 * ```ts
 * const before = snapshot(dir);
 * await runCli(['replay', '--journal', dir]);
 * assert.equal(snapshot(dir), before);
 * ```
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Every file and directory under `dir` with its mode and bytes (symlinks: their target); with
 * `mtimes`, each file's modification time too (a rewrite of the same bytes shows).
 */
export function snapshot(dir: string, opts: { mtimes?: boolean } = {}): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (p: string): void => {
    const st = lstatSync(p);
    const rel = relative(dir, p) || '.';
    if (st.isDirectory()) {
      out.set(rel, `dir ${st.mode}`);
      for (const n of readdirSync(p).sort()) visit(join(p, n));
    } else if (st.isSymbolicLink()) out.set(rel, `link ${readlinkSync(p)}`);
    else if (st.isFile()) out.set(rel, `file ${st.mode}${opts.mtimes ? ` ${st.mtimeMs}` : ''} ${readFileSync(p).toString('base64')}`);
    else out.set(rel, `other ${st.mode} ${st.rdev}`); // a FIFO, socket or device: never read (a FIFO would block)
  };
  if (existsSync(dir)) visit(dir);
  return out;
}
