/**
 * Replay: the state a journal folds to, from its latest checkpoint (brought to the current state
 * schema) and the records after it (each upcast, if old, with the state it folds into).
 *
 * @example
 * ```ts
 * const { journal, fold } = await openFolded(`${stateDir}/journal`);
 * fold.workshops; // as the journal says
 * await journal.close();
 * ```
 */
import { freeze } from 'immer';
import { openJournal, type Checkpoint, type Journal } from '../events/journal.ts';
import { foldRecord, upcastState } from '../events/upcast.ts';
import type { JournalRecord } from '../events/catalogue.ts';
import { initialState, type FoldState } from '../machines/index.ts';

/** The state a checkpoint holds, in the current schema (a copy: the fold mutates it). */
export function stateOf(checkpoint: Checkpoint<unknown> | null): FoldState {
  return checkpoint ? upcastState(structuredClone(checkpoint.state) as Record<string, unknown>) : initialState();
}

/** Replay a checkpoint and a tail into a frozen state, without a proxy or copy per record. */
export function replay(checkpoint: Checkpoint<unknown> | null, tail: readonly JournalRecord[]): FoldState {
  const s = stateOf(checkpoint);
  for (const r of tail) foldRecord(s, r);
  return freeze(s, true);
}

/**
 * Open a durable journal and fold it while it is read: each record is folded as it is decoded, so
 * start-up never holds the whole tail in memory (what `replay.full.1m` measures).
 */
export async function openFolded(dir: string, opts: { checkpointDir?: string; syncInline?: boolean } = {}): Promise<{ journal: Journal; fold: FoldState }> {
  let fold: FoldState = initialState();
  const opened = await openJournal<FoldState>({
    dir,
    durable: true,
    ...opts,
    replay: (checkpoint) => {
      fold = stateOf(checkpoint);
      const s = fold;
      return (r) => foldRecord(s, r);
    },
  });
  return { journal: opened.journal, fold: freeze(fold, true) };
}
