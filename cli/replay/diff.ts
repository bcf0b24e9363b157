/**
 * `atelier replay diff A B`: what changed in the folded state between two points of a journal, as a
 * structural diff (microdiff) of the two states: each workshop, op and object field that was added,
 * removed or changed, with the records in between that touched it summarised by count.
 *
 * The journal is folded once: a copy of the state is kept at the first point and the fold goes on to
 * the second, so a diff costs about one full replay (`replay.diff.1m` against `replay.full.1m`).
 *
 * @example
 * ```sh
 * atelier replay diff 12 40
 * # ~ workshops.nav2.status: "ready" -> "broken"
 * # + objects.layers/ros2-7f3a9c2e1b0d4a65: {...}
 * ```
 */
import type { Context } from '../context.ts';
import { damageLines, streamFacts } from './events.ts';
import { journalDirOf } from '../../replay/image.ts';
import { formatChanges, streamDiff, type Change } from '../../replay/walk.ts';

/** Keep only changes under one workshop: its record, and the ops and objects that belong to it. */
function forWorkshop(changes: readonly Change[], workshop: string, belongs: (path: string) => boolean): Change[] {
  return changes.filter((c) => c.path === `workshops.${workshop}` || c.path.startsWith(`workshops.${workshop}.`) || belongs(c.path));
}

export async function replayDiffCommand(ctx: Context, a: number, b: number, opts: { journal?: string; workshop?: string }): Promise<number> {
  const dir = await journalDirOf({ ...opts, stateDir: ctx.stateDir });
  const [lo, hi] = a <= b ? [a, b] : [b, a];
  // Records in between, per type: what made the difference, in a line.
  const between = new Map<string, number>();
  const { from, to, changes: all, scan } = await streamDiff(dir, a, b, (r) => {
    if (r.seq > lo) between.set(r.type, (between.get(r.type) ?? 0) + 1);
  });
  const facts = await streamFacts(dir, scan);
  let changes = all;
  if (opts.workshop !== undefined) {
    const w = opts.workshop;
    const owned = (path: string) => {
      const [coll, key] = path.split('.', 2) as [string, string | undefined];
      if (key === undefined || (coll !== 'ops' && coll !== 'objects')) return false;
      const rec = (from[coll as 'ops'][key] ?? to[coll as 'ops'][key]) as { workshop?: string } | undefined;
      return rec?.workshop === w;
    };
    changes = forWorkshop(all, w, owned);
  }
  const counts = Object.fromEntries([...between].sort(([x], [y]) => (x < y ? -1 : 1)));
  if (ctx.out.json) {
    ctx.out.result({ ...facts, from: a, to: b, between: hi - lo, types: counts, changes }, () => '');
    return 0;
  }
  const text = [`from seq ${a} to seq ${b}: ${hi - lo} records (${Object.entries(counts).map(([t, n]) => `${n} ${t}`).join(', ') || 'none'})`];
  text.push(...(changes.length ? formatChanges(changes) : ['no difference in the state']));
  text.push(...damageLines(facts));
  ctx.out.result({}, () => text.join('\n'));
  return 0;
}
