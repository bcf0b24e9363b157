/**
 * Reading the state without owning it: the fold of a state directory's checkpoint and journal (and
 * the run directory's volatile journal), read-only. No lock, no repair, no write of any kind: a
 * torn tail is left where it is (the next engine cuts it) and the records before it are folded; a
 * checkpoint's temp file is left for the next engine to remove. What `list` and `show` answer from
 * when no daemon runs, and what the CLI checks a command against before it opens the engine (a
 * refused command then writes nothing at all).
 *
 * The view is the journal's: what the backend holds is not consulted (opening an engine does that).
 *
 * @example
 * ```ts
 * const st = await readState('/home/me/.local/state/atelier', '/run/user/1000/atelier');
 * st === null;                       // no state there (no journal)
 * Object.keys(st!.durable.workshops); // ['nav2']
 * ```
 */
import { join } from 'node:path';
import { checkVersion } from '../events/catalogue.ts';
import { loadLatestCheckpoint } from '../events/checkpoint.ts';
import { corruptError, firstSegmentAfter, listSegments, readSegment, scanSegment } from '../events/segments.ts';
import { foldRecord, upcastState } from '../events/upcast.ts';
// The fold's own modules, not machines/index.ts: `list` loads no decider (nor the journal writer).
import { evolveVolatile } from '../machines/evolve.ts';
import { initialState, initialVolatile, type DomainState, type FoldState, type VolatileState } from '../machines/state.ts';

/** Fold the segments of `dir` after `after` into `step`, read-only; what a start would cut is left out. */
async function scanAll(dir: string, after: number, step: (r: Parameters<typeof foldRecord>[1]) => void): Promise<boolean> {
  const segs = await listSegments(dir);
  if (segs.length === 0) return false;
  const start = firstSegmentAfter(segs, after);
  let expected = segs[start]!.first;
  for (let i = start; i < segs.length; i++) {
    const seg = segs[i]!;
    if (seg.first !== expected) throw corruptError(seg.path, expected, 0, `the segment starts at record ${seg.first}`);
    const scan = scanSegment(seg, await readSegment(seg.path), expected, i === segs.length - 1, after, (r, offset) => {
      if (r.seq <= after) return;
      checkVersion(r, { segment: seg.path, offset });
      step(r);
    });
    expected = scan.nextSeq;
  }
  return true;
}

/**
 * The state a state directory holds, read-only, or null when it holds none (no journal).
 *
 * @throws AtelierError `JOURNAL_CORRUPT` or `JOURNAL_VERSION`, as opening an engine would.
 */
export async function readState(stateDir: string, runDir: string): Promise<DomainState | null> {
  const { checkpoint } = await loadLatestCheckpoint(join(stateDir, 'checkpoints'), { readOnly: true });
  // As engine/replay.ts's stateOf (not imported from there: it would load the journal's writer).
  const durable: FoldState = checkpoint ? upcastState(checkpoint.state as Record<string, unknown>) : initialState();
  const found = await scanAll(join(stateDir, 'journal'), checkpoint?.seq ?? 0, (r) => foldRecord(durable, r));
  if (!found && !checkpoint) return null;
  const volatile: VolatileState = initialVolatile();
  await scanAll(join(runDir, 'volatile'), 0, (r) => evolveVolatile(volatile, r));
  return { durable, volatile };
}
