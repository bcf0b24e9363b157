/**
 * A root filesystem as the tar stream an LXD image's `rootfs` part is, read once on its way to the
 * daemon: what it holds is noted while it passes (its symlinks, its executable files, its
 * `os-release`), its end-of-archive blocks are held back, and a file may be added at its end.
 *
 * Only headers are parsed (ustar, GNU and pax: a name may come from the ustar prefix, a GNU `L`
 * record or a pax `path`); the members themselves pass through unchanged, whatever tar wrote them.
 *
 * @example
 * ```ts
 * const walk = new TarWalk();
 * source.pipe(walk).pipe(upload, { end: false });
 * walk.on('end', () => { upload.end(Buffer.concat([walk.usableInit() ? Buffer.alloc(0) : fileEntry('sbin/init', INIT, 0o755), END_OF_ARCHIVE])); });
 * ```
 */
import { posix } from 'node:path';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { BackendError } from '../types.ts';

const BLOCK = 512;
/** Two zero blocks: where a tar archive ends. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
/** Files whose content is kept while they pass (small: `os-release`). */
const KEPT = new Set(['etc/os-release', 'usr/lib/os-release']);
const KEPT_MAX = 64 * 1024;
/** GNU long names and pax records are kept to name the next member; a bound for a broken archive. */
const META_MAX = 1024 * 1024;
/** Linux's limit on symlinks followed in one lookup. */
const MAX_LINKS = 40;

/** A member path as the walk keys it: relative, no `./`, no trailing `/` (the root is ''). */
export function memberPath(name: string): string {
  const p = posix.normalize(`/${name}`).replace(/\/+$/, '');
  return p.replace(/^\/+/, '');
}

/** Passes a tar stream through, up to (not including) its end-of-archive blocks, noting its members. */
export class TarWalk extends Transform {
  /** Symlinks: member path to target. */
  readonly symlinks = new Map<string, string>();
  /** Regular files (and hard links) with an execute bit. */
  readonly executables = new Set<string>();
  /** The content of the `KEPT` files that were present. */
  readonly kept = new Map<string, Buffer>();
  /** Members seen. */
  members = 0;
  private pending = Buffer.alloc(0);
  /** Bytes of the current member's data (padded to whole blocks) still to pass. */
  private dataLeft = 0;
  private capture: { kind: 'L' | 'K' | 'x' | 'file'; path: string; size: number; chunks: Buffer[]; got: number } | null = null;
  /** What GNU `L`/`K` records and pax `x` headers say about the next member. */
  private next: { path?: string; linkpath?: string } = {};
  private ended = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.consume(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (!this.ended && (this.dataLeft > 0 || this.pending.length > 0 || this.members === 0)) {
      cb(new BackendError('INVALID', this.members === 0 ? 'not a tar archive (no member)' : 'the tar archive is truncated'));
      return;
    }
    cb();
  }

  /** Whether `path` (absolute or not) leads, through the root's own symlinks, to an executable file. */
  isExecutable(path: string): boolean {
    const p = this.resolve(path);
    return p !== null && this.executables.has(p);
  }

  /** Where `path` leads through the root's symlinks (relative, as `memberPath`), or null on a loop. */
  resolve(path: string): string | null {
    let todo = memberPath(path).split('/').filter(Boolean);
    let done: string[] = [];
    for (let links = 0; todo.length; ) {
      const c = todo.shift()!;
      const at = [...done, c].join('/');
      const target = this.symlinks.get(at);
      if (target === undefined) {
        done.push(c);
        continue;
      }
      if (++links > MAX_LINKS) return null;
      const joined = target.startsWith('/') ? target : posix.join('/', ...done, target);
      todo = [...memberPath(joined).split('/').filter(Boolean), ...todo];
      done = [];
    }
    return done.join('/');
  }

  private consume(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (buf.length && !this.ended) {
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, buf.length);
        const part = buf.subarray(0, n);
        this.keep(part);
        this.push(part);
        this.dataLeft -= n;
        buf = buf.subarray(n);
        if (this.dataLeft === 0) this.closeCapture();
        continue;
      }
      if (buf.length < BLOCK) break;
      const header = buf.subarray(0, BLOCK);
      buf = buf.subarray(BLOCK);
      if (header.every((b) => b === 0)) {
        // The end: held back (a file may follow it), and whatever comes after is padding.
        this.ended = true;
        break;
      }
      this.onHeader(header);
      this.push(header);
    }
    if (!this.ended && buf.length) this.pending = Buffer.from(buf);
  }

  private onHeader(h: Buffer): void {
    if (!checksumOk(h)) throw new BackendError('INVALID', `not a tar archive (bad header checksum after ${this.members} members)`);
    const type = String.fromCharCode(h[156]!);
    const size = numberField(h.subarray(124, 136));
    const ustar = h.toString('latin1', 257, 263) === 'ustar\0';
    const prefix = ustar ? cstr(h, 345, 155) : '';
    const name = this.next.path ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
    const linkname = this.next.linkpath ?? cstr(h, 157, 100);
    const path = memberPath(name);
    this.dataLeft = Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L' || type === 'K' || type === 'x') {
      if (size > META_MAX) throw new BackendError('INVALID', `a tar ${type} record of ${size} bytes: not a root filesystem archive`);
      this.capture = { kind: type, path, size, chunks: [], got: 0 };
      if (size === 0) this.closeCapture();
      return;
    }
    this.next = {};
    if (type === 'g') return; // pax global header: nothing about one member
    this.members++;
    const mode = numberField(h.subarray(100, 108));
    if (type === '2') this.symlinks.set(path, linkname);
    else if ((type === '0' || type === '\0' || type === '7' || type === '1') && mode & 0o111) this.executables.add(path);
    if ((type === '0' || type === '\0') && KEPT.has(path) && size <= KEPT_MAX) {
      this.capture = { kind: 'file', path, size, chunks: [], got: 0 };
      if (size === 0) this.closeCapture();
    }
  }

  /** Keep the part of `data` that belongs to the captured member (not its padding). */
  private keep(data: Buffer): void {
    const c = this.capture;
    if (!c || c.got >= c.size) return;
    const part = data.subarray(0, c.size - c.got);
    c.chunks.push(Buffer.from(part));
    c.got += part.length;
  }

  private closeCapture(): void {
    const c = this.capture;
    if (!c) return;
    this.capture = null;
    const data = Buffer.concat(c.chunks);
    if (c.kind === 'file') this.kept.set(c.path, data);
    else if (c.kind === 'L') this.next.path = cstr(data, 0, data.length);
    else if (c.kind === 'K') this.next.linkpath = cstr(data, 0, data.length);
    else Object.assign(this.next, paxRecords(data));
  }
}

/** A ustar header and data for one regular file owned by root (0:0), padded to whole blocks. */
export function fileEntry(path: string, content: Buffer | string, mode: number, mtime = Math.floor(Date.now() / 1000)): Buffer {
  const data = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
  const name = `./${memberPath(path)}`;
  if (Buffer.byteLength(name) > 99) throw new BackendError('INTERNAL', `tar member name too long: ${name}`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 'utf8');
  h.write(octal(mode, 7), 100, 'latin1');
  h.write(octal(0, 7), 108, 'latin1');
  h.write(octal(0, 7), 116, 'latin1');
  h.write(octal(data.length, 11), 124, 'latin1');
  h.write(octal(mtime, 11), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h[156] = 0x30; // '0': a regular file
  h.write('ustar\x0000', 257, 'latin1');
  h.write('root', 265, 'latin1');
  h.write('root', 297, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return Buffer.concat([h, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width, '0')}\0`;
}

/** A NUL-terminated string field. */
function cstr(b: Buffer, at: number, len: number): string {
  const field = b.subarray(at, at + len);
  const nul = field.indexOf(0);
  return field.toString('utf8', 0, nul === -1 ? field.length : nul);
}

/** A numeric field: octal text, or GNU's base-256 (first byte's high bit set) for large values. */
function numberField(f: Buffer): number {
  if (f[0]! & 0x80) {
    let n = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) n = n * 256 + f[i]!;
    return n;
  }
  const text = f.toString('latin1').replace(/[\0 ]+$/, '').trim();
  return text ? parseInt(text, 8) : 0;
}

function checksumOk(h: Buffer): boolean {
  const stored = numberField(h.subarray(148, 156));
  // Old tars summed the bytes as signed chars: accept either sum.
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** `path` and `linkpath` from a pax extended header's `LEN key=value\n` records. */
function paxRecords(data: Buffer): { path?: string; linkpath?: string } {
  const out: { path?: string; linkpath?: string } = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const len = parseInt(data.toString('latin1', at, space), 10);
    if (!(len > 0)) break;
    const record = data.toString('utf8', space + 1, at + len - 1);
    const eq = record.indexOf('=');
    const key = record.slice(0, eq);
    if (key === 'path') out.path = record.slice(eq + 1);
    else if (key === 'linkpath') out.linkpath = record.slice(eq + 1);
    at += len;
  }
  return out;
}
