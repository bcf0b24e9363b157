/**
 * `atelier replay bisect [--invariant NAME]`: the first record after which one of the simulation's
 * journal invariants (simulate/journal-invariants.ts) fails, with the record in words and the state
 * diff it made. Exit 0 and one clear line when none fails; exit 1 when one does.
 *
 * It folds record by record and checks after each, rather than halving the journal: an invariant can
 * fail and hold again (a later repair), so only a linear walk finds the first failure for certain;
 * the checks cost per record what the state holds, and the fold is the replay's own.
 *
 * @example
 * ```sh
 * atelier replay bisect --invariant held
 * # first failure after record 57 (op.finished on nav2): invariant held: workshop nav2 is ready and needs ...
 * ```
 */
import type { JournalRecord } from '../../events/catalogue.ts';
import { AtelierError } from '../../machines/errors.ts';
import { firstViolation, JOURNAL_INVARIANTS, type JournalInvariant } from '../../simulate/journal-invariants.ts';
import type { Context } from '../context.ts';
import { describeRecord, type Plans } from '../../replay/describe.ts';
import { damageLines, recordLine, streamFacts } from './events.ts';
import { journalDirOf } from '../../replay/image.ts';
import { formatChanges, streamDiff, streamWalk } from '../../replay/walk.ts';

/** The invariants `--invariant` names (comma-separated or repeated), or all of them. */
export function selectInvariants(names: readonly string[] | undefined): readonly JournalInvariant[] {
  const wanted = (names ?? []).flatMap((n) => n.split(',')).map((n) => n.trim()).filter(Boolean);
  if (wanted.length === 0) return JOURNAL_INVARIANTS;
  return wanted.map((n) => {
    const inv = JOURNAL_INVARIANTS.find((i) => i.name === n);
    if (!inv) throw new AtelierError('INVALID_ARGUMENT', `--invariant ${JSON.stringify(n)} is not an invariant: give one of ${JOURNAL_INVARIANTS.map((i) => i.name).join(', ')}`, { option: 'invariant' });
    return inv;
  });
}

export async function replayBisectCommand(ctx: Context, opts: { journal?: string; invariant?: string[] }): Promise<number> {
  const invariants = selectInvariants(opts.invariant);
  const dir = await journalDirOf({ ...opts, stateDir: ctx.stateDir });
  const plans: Plans = new Map();
  let found: { record: JournalRecord; text: string; invariant: JournalInvariant; message: string } | null = null;
  const { scan } = await streamWalk(dir, (r, s) => {
    const text = describeRecord(r, plans);
    const v = firstViolation(s, r, invariants);
    if (!v) return true;
    found = { record: r, text, ...v };
    return false;
  });
  const facts = await streamFacts(dir, scan);
  const names = invariants.map((i) => i.name);
  const hit = found as { record: JournalRecord; text: string; invariant: JournalInvariant; message: string } | null;
  if (!hit) {
    if (ctx.out.json) ctx.out.result({ ...facts, invariants: names, failure: null }, () => '');
    else ctx.out.result({}, () => [`no invariant fails: ${names.join(', ')} hold after each of the ${facts.records} records`, ...damageLines(facts)].join('\n'));
    return 0;
  }
  const seq = hit.record.seq;
  const { changes } = await streamDiff(dir, seq - 1, seq);
  const failure = { seq, type: hit.record.type, key: hit.record.key, invariant: hit.invariant.name, simulation: hit.invariant.simulation, message: hit.message, record: { ...hit.record, text: hit.text }, changes };
  if (ctx.out.json) {
    ctx.out.result({ ...facts, invariants: names, failure }, () => '');
    return 1;
  }
  const text = [
    `first failure after record ${seq} (${hit.record.type} on ${hit.record.key}): invariant ${hit.invariant.name} (${hit.invariant.description}): ${hit.message}`,
    '',
    recordLine(hit.record, hit.text),
    'what it changed:',
    ...formatChanges(changes).map((l) => `  ${l}`),
    '',
    `run \`atelier replay why ${hit.record.key}\` for the decisions before it, or \`atelier replay at ${seq - 1}\` for the state before it`,
    ...damageLines(facts),
  ];
  ctx.out.result({}, () => text.join('\n'));
  return 1;
}
