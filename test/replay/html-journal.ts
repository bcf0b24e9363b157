/**
 * The journal the timeline tests draw: written by the engine on the fake backend, with fixed ids
 * and clock, holding in one file a launch, a refresh whose new SDK's hook fails (undone from the
 * stash), a second workshop, a transient container (the volatile journal), a refresh cut by a crash
 * right after its rebuild (reconciled at the next start, which probes the rebuild and undoes the
 * op), a gc of an orphan, and a torn last record.
 *
 * @example
 * ```ts
 * const j = await timelineJournal();
 * await writeTimeline('/tmp/t.html', await readJournalImage(j.dir));
 * j.cleanup();
 * ```
 */
import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Harness } from '../golden/write.ts';
import { sdk, spec, V1, V2 } from '../engine/helpers.ts';

export interface TimelineJournal {
  /** Holds `state/journal` and `run/volatile`: what `--journal` takes. */
  readonly dir: string;
  /** The last whole record's sequence number (a torn piece follows it). */
  readonly last: number;
  /** The ops: the launch, the failed refresh, the crashed refresh. */
  readonly ops: { readonly launch: string; readonly failed: string; readonly crashed: string };
  cleanup(): void;
}

const ROS = spec([sdk('ros2', 'humble'), sdk('tools', 'gdb')], { name: 'ros', projectId: '5e6f7a8b' });

/**
 * Write the journal. `torn: false` leaves the last record whole; `removeAll` ends by removing both
 * workshops (the benchmark repeats the journal under fresh names).
 */
export async function timelineJournal(opts: { torn?: boolean; removeAll?: boolean } = {}): Promise<TimelineJournal> {
  // Per-workshop layers, as journals before the SDK cache hold them: its stash copies get lanes.
  const h = new Harness(10_000, { sdkCache: false });
  try {
    await h.open();
    let launch = '';
    await h.e.launch(V1, { onProgress: (p) => void (launch ||= p.op) });
    // A refresh whose new SDK's setup-base fails: undone from the stash.
    let failed = '';
    h.backend.setFaultPlan({ rules: [{ call: 'exec', when: 'before', action: 'fail', code: 'EXEC_FAILED' }] });
    await h.e.refresh(V2, { onProgress: (p) => void (failed ||= p.op) }).catch(() => undefined);
    h.backend.setFaultPlan(null);
    await h.e.launch(ROS);
    await h.e.run({ from: 'nav2', script: 'echo hi' });
    // A refresh cut by a crash right after its rebuild; the next start reconciles it.
    let crashed = '';
    await h.crashAt({ call: 'copy', target: 'workshops/', when: 'after' }, () => h.e.refresh(V2, { onProgress: (p) => void (crashed ||= p.op) }));
    // An owned object nobody accounts for: gc removes it.
    h.backend.plant({ space: 'layers', name: 'nav-00000000deadbeef' }, { tags: { owner: 'alice', op: 'op-lost', kind: 'sdk', workshop: 'nav2' } });
    await h.e.gc();
    await h.e.stash('ros');
    if (opts.removeAll) {
      await h.e.remove('ros');
      await h.e.remove('nav2');
    }
    const last = h.e.folded.seq;
    await h.e.close();
    if (opts.torn !== false) {
      const dir = join(h.stateDir, 'journal');
      const seg = readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort().at(-1)!;
      appendFileSync(join(dir, seg), `{"seq":${last + 1},"v":1,"type":"op.started","key":"nav2","da`);
    }
    return { dir: h.dir, last, ops: { launch, failed, crashed }, cleanup: () => h.cleanup() };
  } catch (e) {
    h.cleanup();
    throw e;
  }
}
