/**
 * Checkpoints: the fold of the journal at seq N, so start-up replays only the records after N.
 *
 * A checkpoint is one file `checkpoint-<seq, 12 digits>.json` holding
 * `{"seq":N,"v":2,"state":{...},"crc":"xxxxxxxx"}` (sealed like a journal record, so a bit flip is
 * caught, not folded). It is written atomically: temp file, fsync, rename, fsync of the directory.
 * A checkpoint that is partial, corrupt or misnamed is ignored and the previous one (or a full
 * replay) is used instead; the last two are kept so there is always a fallback.
 *
 * @example
 * ```ts
 * await writeCheckpointFile('/state/checkpoints', 1200, state, true);
 * const { checkpoint } = await loadLatestCheckpoint('/state/checkpoints');
 * ```
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { AtelierError } from '../machines/errors.ts';
import { sealJson, unsealJson } from './record.ts';
import { fsyncDir, readdirIfPresent } from './segments.ts';

/**
 * The checkpoint file format's version. 2: the state inside carries its schema (`schema`, see
 * `machines/state.ts`), which an older atelier cannot read; 1 (read too) held schema 1.
 */
export const CHECKPOINT_VERSION = 2;
/** The oldest format this atelier reads (its state is upcast: `upcastState` in upcast.ts). */
const OLDEST_READ = 1;
/** How many checkpoints are kept after a write: the newest, and one to fall back on. */
export const CHECKPOINTS_KEPT = 2;

export interface Checkpoint<S> {
  readonly seq: number;
  readonly state: S;
}

const NAME_RE = /^checkpoint-(\d{12,})\.json$/;

export function checkpointName(seq: number): string {
  return `checkpoint-${String(seq).padStart(12, '0')}.json`;
}

function listCheckpoints(names: readonly string[]): { name: string; seq: number }[] {
  const found: { name: string; seq: number }[] = [];
  for (const name of names) {
    const m = NAME_RE.exec(name);
    if (m) found.push({ name, seq: Number(m[1]) });
  }
  return found.sort((a, b) => b.seq - a.seq);
}

/**
 * Writes a checkpoint atomically and prunes all but the newest `CHECKPOINTS_KEPT`. With
 * `durable: false` the same steps run without fsyncs.
 *
 * @example
 * ```ts
 * await writeCheckpointFile(dir, journal.lastSeq, state, true);
 * ```
 */
export async function writeCheckpointFile<S>(dir: string, seq: number, state: S, durable: boolean): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true });
  const name = checkpointName(seq);
  const final = join(dir, name);
  const temp = join(dir, `${name}.tmp`);
  const text = `${sealJson(JSON.stringify({ seq, v: CHECKPOINT_VERSION, state }))}\n`;
  try {
    const fh = await fs.promises.open(temp, 'w', 0o644);
    try {
      await fh.writeFile(text, 'utf8');
      // The data must be on disk before the rename makes it visible, or a crash could publish an empty file.
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(temp, final);
  } catch (e) {
    // A checkpoint that could not be written (a full disk) leaves nothing behind.
    await fs.promises.rm(temp, { force: true });
    throw e;
  }
  if (durable) await fsyncDir(dir);
  const all = listCheckpoints(await readdirIfPresent(dir));
  for (const old of all.slice(CHECKPOINTS_KEPT)) {
    await fs.promises.rm(join(dir, old.name), { force: true });
  }
}

/** Why a checkpoint file was passed over. */
export interface IgnoredCheckpoint {
  readonly path: string;
  readonly why: string;
}

/**
 * Finds the newest valid checkpoint in `dir` (a missing directory has none). Invalid ones are
 * skipped and listed in `ignored`; leftover temp files from a crash mid-write are removed.
 *
 * @throws AtelierError `JOURNAL_VERSION` for a checkpoint written in a newer format.
 * @example
 * ```ts
 * const { checkpoint, ignored } = await loadLatestCheckpoint<State>(dir);
 * ```
 */
export async function loadLatestCheckpoint<S>(
  dir: string,
  opts: { readOnly?: boolean } = {},
): Promise<{ checkpoint: Checkpoint<S> | null; ignored: IgnoredCheckpoint[] }> {
  const ignored: IgnoredCheckpoint[] = [];
  const names = await readdirIfPresent(dir);
  // A reader that must write nothing (`readOnly`: list, show, the debugger) leaves them to the next engine.
  if (!opts.readOnly) {
    for (const n of names) {
      if (/^checkpoint-\d+\.json\.tmp$/.test(n)) fs.rmSync(join(dir, n), { force: true });
    }
  }
  for (const { name, seq } of listCheckpoints(names)) {
    const path = join(dir, name);
    let buf: Buffer;
    try {
      // Synchronous, as start-up's other small reads are (see readSegment in segments.ts).
      buf = fs.readFileSync(path);
    } catch (e) {
      ignored.push({ path, why: `unreadable (${(e as NodeJS.ErrnoException).code ?? e})` });
      continue;
    }
    const end = buf.length > 0 && buf[buf.length - 1] === 0x0a ? buf.length - 1 : buf.length;
    const u = unsealJson(buf.subarray(0, end));
    if (!u.ok) {
      ignored.push({ path, why: `damaged (${u.why})` });
      continue;
    }
    const o = u.value;
    if (o.v !== undefined && typeof o.v === 'number' && o.v > CHECKPOINT_VERSION) {
      throw new AtelierError(
        'JOURNAL_VERSION',
        `checkpoint ${path} has format version ${o.v}, but this atelier reads up to version ${CHECKPOINT_VERSION}: ` +
          'it was written by a newer atelier; upgrade atelier to read this state directory',
        { path, v: o.v, current: CHECKPOINT_VERSION },
      );
    }
    if (o.seq !== seq || typeof o.v !== 'number' || o.v < OLDEST_READ || !('state' in o)) {
      ignored.push({ path, why: 'not a checkpoint for its name' });
      continue;
    }
    return { checkpoint: { seq, state: o.state as S }, ignored };
  }
  return { checkpoint: null, ignored };
}
