/**
 * `atelier replay html -o FILE [--journal DIR]`: the journal as one self-contained HTML timeline
 * (no network: style, script and data inline), to open in any browser. A lane per workshop, per
 * backend object (instance, SDK layer, stash) and per transient container; each op a bar from its
 * intent to its outcome, coloured by outcome; undo steps linked to what they undo; reconciliation
 * and gc marks; a failures-only filter, jump to a sequence number, next failure; a click shows a
 * record's JSON and the state diff it made. See `timeline/`.
 *
 * @example
 * ```sh
 * atelier replay html -o /tmp/timeline.html --journal /tmp/from-alice/state
 * atelier --json replay html -o t.html   # {"ok":true,"file":"/…/t.html","records":41,"first":1,"last":41,"damage":null}
 * ```
 */
import { resolve } from 'node:path';
import type { Context } from '../context.ts';
import { openImage } from '../../replay/image.ts';
import { writeTimeline } from '../../replay/timeline/index.ts';

/** Write the timeline; prints where, how many records, the first and last sequence numbers. */
export async function replayHtmlCommand(ctx: Context, opts: { journal?: string; output: string }): Promise<number> {
  const image = await openImage({ ...(opts.journal !== undefined ? { journal: opts.journal } : {}), stateDir: ctx.stateDir, runDir: ctx.runDir });
  const facts = await writeTimeline(resolve(opts.output), image);
  const d = image.damage;
  ctx.out.result({ file: facts.file, records: facts.records, first: facts.first, last: facts.last, damage: d }, () => {
    const range = facts.first === null ? 'no records' : `${facts.records} records, ${facts.first} to ${facts.last}`;
    return `wrote ${facts.file}: ${range}${d ? `; the journal is ${d.kind === 'torn' ? 'torn' : 'damaged'} at record ${d.seq}` : ''}`;
  });
  return 0;
}
