/**
 * Reconciliation: make the journal and the backend agree again after a crash, at start-up and on
 * demand.
 *
 * 1. Every op found in progress: if an effect was requested without an outcome, probe its target,
 *    journal the observation and let the layer machine judge it (DESIGN.md's table); then the
 *    workshop machine decides. An op interrupted before its pivot is undone (its caller is gone:
 *    a crash is an abort); one past its pivot, or in undo or clean-up, rolls on.
 * 2. The inventory diff: owned objects nobody accounts for are removed (`object.orphan-removed`);
 *    objects the state holds but the backend lacks are journaled `object.missing`, and the fold
 *    marks their workshop broken (a refresh repairs a lost layer; a lost instance needs remove).
 * 3. Transient containers: volatile records whose container is gone are dropped; containers the
 *    volatile journal does not know (it was wiped by a reboot) are orphans like any other.
 *
 * Every decision depends only on the journal and the observations, so reconciling the same crash
 * image twice journals the same thing.
 *
 * @example
 * ```ts
 * const report = await engine.reconcile(); // { pending: 1, orphans: 0, missing: 0 }
 * ```
 */
import type { ObjectInfo, ObjectRef } from '../backends/types.ts';
import { isBackendError } from '../backends/types.ts';
import type { ProbeDecision } from '../events/catalogue.ts';
import { judgeProbe } from '../machines/layer.ts';
import { phaseSteps } from '../machines/plan.ts';
import { decide, resolveWorkshop, type WorkshopEvent } from '../machines/workshop.ts';
import type { GcReport, ReconcileReport } from './api.ts';
import type { EngineImpl } from './engine.ts';
import { observe } from './effects.ts';
import { objectKey } from './fold.ts';

export class Reconciler {
  constructor(private readonly engine: EngineImpl) {}

  /** Finish or undo one op found in progress. */
  private async recoverOp(opId: string): Promise<void> {
    const e = this.engine;
    let op = e.folded.ops[opId]!;
    let decision: ProbeDecision | null = null;
    if (op.pending) {
      const effect = phaseSteps(op.plan, op.phase, op.undoFrom)[op.step]!.effect;
      const observation = effect.type === 'exec' ? { present: true } : await observe(e.backend, e.owner, effect.target);
      decision = judgeProbe(effect, observation, opId);
      await e.append([{ type: 'effect.observed', key: op.workshop, data: { op: opId, phase: op.phase, step: op.step, at: e.clock(), observation, decision } }]);
      op = e.folded.ops[opId]!;
    }
    const current = phaseSteps(op.plan, op.phase, op.undoFrom)[op.step];
    const failed = decision === 'fail' || decision === 'unknown';
    const snap = resolveWorkshop(e.contextFor(op.workshop));
    const events: WorkshopEvent[] = [];
    if (op.phase === 'do' && !current?.retry) events.push({ type: 'abort', code: 'INTERRUPTED', message: 'the engine stopped while this operation ran' });
    if (failed) events.push({ type: 'step.failed', code: op.failure?.code ?? 'INTERRUPTED', message: op.failure?.message ?? 'interrupted' });
    events.push({ type: 'resume' });
    for (const ev of events) {
      const d = decide(snap, ev);
      if (d.actions.length > 0) {
        await e.drive(op.workshop, opId, d.actions);
        return;
      }
    }
  }

  /**
   * A `--rm` container still recorded belongs to a run that died or failed to remove it (runs are
   * never in flight here: reconcile and gc are exclusive), so nobody else will remove it.
   */
  private async reapDeadRuns(): Promise<number> {
    const e = this.engine;
    let reaped = 0;
    for (const c of Object.values(e.volatileState.containers).filter((c) => !c.keep).sort((a, b) => a.id.localeCompare(b.id))) {
      await e.backend.remove(c.ref);
      await e.appendVolatile([{ type: 'container.removed', key: c.id, data: { id: c.id, at: e.clock() } }]);
      reaped++;
    }
    return reaped;
  }

  /** Owned backend objects the state does not account for (or marks as garbage). */
  private orphans(inventory: readonly ObjectInfo[]): ObjectInfo[] {
    const { objects } = this.engine.folded;
    const live = new Set(Object.values(this.engine.volatileState.containers).map((c) => objectKey(c.ref)));
    return inventory.filter((o) => {
      const key = objectKey(o.ref);
      const rec = objects[key];
      if (o.tags.kind === 'container') return !live.has(key);
      return !rec || rec.garbage === true;
    });
  }

  private async removeOrphans(orphans: readonly ObjectInfo[]): Promise<ObjectRef[]> {
    const e = this.engine;
    const removed: ObjectRef[] = [];
    // Containers first: a layer that a transient container still depends on cannot go before it.
    const ordered = [...orphans].sort((a, b) => Number(b.tags.kind === 'container') - Number(a.tags.kind === 'container'));
    for (const o of ordered) {
      try {
        await e.backend.remove(o.ref);
      } catch (err) {
        if (isBackendError(err, 'IN_USE') || isBackendError(err, 'BUSY')) continue;
        throw err;
      }
      removed.push(o.ref);
      if (o.tags.kind !== 'container' || e.folded.objects[objectKey(o.ref)])
        await e.append([{ type: 'object.orphan-removed', key: o.tags.workshop ?? 'engine', data: { object: { ref: o.ref, kind: o.tags.kind, ...(o.tags.workshop ? { workshop: o.tags.workshop } : {}), ...(o.tags.op ? { op: o.tags.op } : {}) }, at: e.clock() } }]);
    }
    return removed;
  }

  async reconcile(): Promise<ReconcileReport> {
    const e = this.engine;
    const pendingOps = Object.keys(e.folded.ops).sort();
    for (const id of pendingOps) await this.recoverOp(id);

    await this.reapDeadRuns();
    const inventory = await e.backend.list(e.owner);
    const present = new Set(inventory.map((o) => objectKey(o.ref)));
    // Transient containers whose backend object is gone (a reboot, a crash mid-run).
    const gone = Object.values(e.volatileState.containers).filter((c) => !present.has(objectKey(c.ref)));
    if (gone.length) await e.appendVolatile(gone.map((c) => ({ type: 'container.removed' as const, key: c.id, data: { id: c.id, at: e.clock() } })));
    // Objects whose creation or removal never settled (an op that gave up) are settled by what is there.
    const unsettled = Object.values(e.folded.objects)
      .filter((o) => (o.state === 'pending' || o.state === 'removing') && !e.folded.ops[o.op])
      .sort((a, b) => objectKey(a.ref).localeCompare(objectKey(b.ref)));
    for (const o of unsettled)
      await e.append([{ type: 'object.settled', key: o.workshop ?? 'engine', data: { object: { ref: o.ref, kind: o.kind, ...(o.workshop ? { workshop: o.workshop } : {}), op: o.op }, present: present.has(objectKey(o.ref)), at: e.clock() } }]);

    const orphans = await this.removeOrphans(this.orphans(inventory));
    const missing = Object.values(e.folded.objects)
      .filter((o) => o.state === 'present' && !present.has(objectKey(o.ref)))
      .sort((a, b) => objectKey(a.ref).localeCompare(objectKey(b.ref)));
    for (const o of missing)
      await e.append([{ type: 'object.missing', key: o.workshop ?? 'engine', data: { object: { ref: o.ref, kind: o.kind, ...(o.workshop ? { workshop: o.workshop } : {}), op: o.op }, at: e.clock() } }]);
    const report = { pending: pendingOps.length, orphans: orphans.length, missing: missing.length };
    await e.append([{ type: 'engine.reconciled', key: 'engine', data: { ...report, at: e.clock() } }]);
    return report;
  }

  async gc(dryRun: boolean): Promise<GcReport> {
    const e = this.engine;
    if (!dryRun) await this.reapDeadRuns();
    const candidates = this.orphans(await e.backend.list(e.owner));
    if (dryRun) return { orphans: candidates.map((o) => o.ref), dryRun };
    return { orphans: await this.removeOrphans(candidates), dryRun };
  }
}
