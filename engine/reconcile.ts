/**
 * Reconciliation: make the journal and the backend agree again after a crash, at start-up and on
 * demand. This file does the I/O (probes, the inventory, removals); every decision is the domain
 * core's (`decide`), journaled before anything acts on it.
 *
 * 1. Every op found in progress: if an effect was requested without an outcome, probe its target
 *    and let the layer chart judge the observation (the reconciliation table); then the workshop
 *    chart decides. An op interrupted before its pivot is undone (its caller is gone: a crash is an
 *    abort); one past its pivot, or in undo or clean-up, rolls on.
 * 2. Transient containers: `--rm` containers still recorded are removed (their run died); records
 *    whose container the backend no longer holds are dropped (`lost`: a reboot).
 * 3. The inventory: objects a given-up op left `pending` or `removing` are settled by what is
 *    there; owned objects nobody accounts for are removed (`object.orphan-removed`); objects the
 *    state holds but the backend lacks are journaled `object.missing`, and the charts decide what
 *    that does to their workshop (a refresh repairs a lost layer; a lost instance needs remove).
 *
 * Every decision depends only on the journal and the observations, so reconciling the same crash
 * image twice journals the same thing.
 *
 * @example
 * ```ts
 * const report = await new Reconciler(host).reconcile(); // { pending: 1, orphans: 0, missing: 0 }
 * ```
 */
import { isBackendError, type Backend, type ObjectInfo } from '../backends/types.ts';
import { currentStep, decide, instanceRef, objectKey, type DomainState, type IdSupply, type Input, type KeyedEvent, type ObjectRef } from '../machines/index.ts';
import type { GcReport, ReconcileReport } from './api.ts';
import { observe } from './effects.ts';

/** What reconciliation needs of the engine. */
export interface ReconcileHost {
  readonly backend: Backend;
  readonly owner: string;
  /** The folded state, durable and volatile, as it stands now. */
  readonly world: DomainState;
  clock(): string;
  /** Journal events (each to its journal), then fold them. */
  record(events: readonly KeyedEvent[]): Promise<void>;
  /** Journal an op's events and carry the op on to its end. */
  drive(name: string, opId: string, events: KeyedEvent[]): Promise<unknown>;
  /** Ids for the ops reconciliation starts itself (a restart). */
  readonly ids: IdSupply;
}

export class Reconciler {
  constructor(private readonly host: ReconcileHost) {}

  private decide(input: Input): KeyedEvent[] {
    return decide(this.host.world, input);
  }

  /**
   * Finish or undo one op found in progress; resolves to what driving it returned (its outcome),
   * or undefined when there was nothing to decide. The engine also calls it for an op whose
   * records a full disk refused.
   */
  async recover(opId: string): Promise<unknown> {
    const h = this.host;
    const op = h.world.durable.ops[opId]!;
    let events: KeyedEvent[];
    if (op.pending) {
      const effect = currentStep(op)!.effect;
      // An exec's outcome cannot be observed: the table says so whatever the probe would show.
      const observation = effect.type === 'exec' ? { present: true } : await observe(h.backend, h.owner, effect.target);
      events = this.decide({ type: 'observed', op: opId, at: h.clock(), observation });
    } else {
      events = this.decide({ type: 'interrupted', op: opId, at: h.clock() });
    }
    return events.length > 0 ? h.drive(op.workshop, opId, events) : undefined;
  }

  /**
   * A `--rm` container still recorded belongs to a run that died or failed to remove it (runs are
   * never in flight here: reconcile and gc are exclusive), so nobody else will remove it.
   */
  private async reapDeadRuns(): Promise<number> {
    const h = this.host;
    let reaped = 0;
    // Code-point order (not the locale's): reconciling the same image must journal the same on every machine.
    for (const c of Object.values(h.world.volatile.containers).filter((c) => !c.keep).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
      const events = this.decide({ type: 'container.remove', id: c.id, at: h.clock() });
      await h.backend.remove(c.ref);
      await h.record(events);
      reaped++;
    }
    return reaped;
  }

  /** Owned backend objects the state does not account for (or marks as garbage). */
  private orphans(inventory: readonly ObjectInfo[]): ObjectInfo[] {
    const { durable, volatile } = this.host.world;
    const live = new Set(Object.values(volatile.containers).map((c) => objectKey(c.ref)));
    return inventory.filter((o) => {
      const key = objectKey(o.ref);
      const rec = durable.objects[key];
      if (o.tags.kind === 'container') return !live.has(key);
      return !rec || rec.garbage === true;
    });
  }

  private async removeOrphans(orphans: readonly ObjectInfo[]): Promise<ObjectRef[]> {
    const h = this.host;
    const removed: ObjectRef[] = [];
    // Containers first: a layer that a transient container still depends on cannot go before it.
    const ordered = [...orphans].sort((a, b) => Number(b.tags.kind === 'container') - Number(a.tags.kind === 'container'));
    for (const o of ordered) {
      try {
        await h.backend.remove(o.ref);
      } catch (err) {
        if (isBackendError(err, 'IN_USE') || isBackendError(err, 'BUSY')) continue;
        throw err;
      }
      removed.push(o.ref);
      const object = { ref: o.ref, kind: o.tags.kind, ...(o.tags.workshop ? { workshop: o.tags.workshop } : {}), ...(o.tags.op ? { op: o.tags.op } : {}) };
      await h.record(this.decide({ type: 'orphan.removed', at: h.clock(), object }));
    }
    return removed;
  }

  async reconcile(): Promise<ReconcileReport> {
    const h = this.host;
    const pendingOps = Object.keys(h.world.durable.ops).sort();
    for (const id of pendingOps) await this.recover(id);

    await this.reapDeadRuns();
    const inventory = await h.backend.list(h.owner);
    const present = new Set(inventory.map((o) => objectKey(o.ref)));
    // Transient containers whose backend object is gone (a reboot, a crash mid-run).
    const gone = Object.values(h.world.volatile.containers).filter((c) => !present.has(objectKey(c.ref)));
    if (gone.length) await h.record(this.decide({ type: 'containers.lost', ids: gone.map((c) => c.id), at: h.clock() }));
    const settled = this.decide({ type: 'settle', at: h.clock(), present });
    if (settled.length) await h.record(settled);
    const orphans = await this.removeOrphans(this.orphans(inventory));
    const missing = this.decide({ type: 'inventory', at: h.clock(), present });
    if (missing.length) await h.record(missing);
    const restarted = await this.restartStopped(inventory);
    const report = { pending: pendingOps.length, orphans: orphans.length, missing: missing.length, ...(restarted > 0 ? { restarted } : {}) };
    await h.record(this.decide({ type: 'reconciled', at: h.clock(), ...report }));
    return report;
  }

  /**
   * 4. Workshops whose instance the inventory shows stopped: the chart starts again those wanted
   * running (a host reboot stopped them; `atelier stop` did not), in name order. A restart that
   * fails is an op that failed like any other: the workshop stays as it was, with its error.
   */
  private async restartStopped(inventory: readonly ObjectInfo[]): Promise<number> {
    const h = this.host;
    const stopped = new Set(inventory.filter((o) => o.status === 'stopped').map((o) => objectKey(o.ref)));
    let restarted = 0;
    const names = Object.keys(h.world.durable.workshops).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const ws = h.world.durable.workshops[name]!;
      if (ws.running !== true || ws.op !== null || !stopped.has(objectKey(instanceRef(ws.instance)))) continue;
      const events = this.decide({ type: 'found.stopped', workshop: name, owner: h.owner, at: h.clock(), ids: h.ids });
      if (events.length === 0) continue;
      const opId = (events[0] as Extract<KeyedEvent, { type: 'op.started' }>).data.op;
      await h.drive(name, opId, events);
      restarted++;
    }
    return restarted;
  }

  async gc(dryRun: boolean): Promise<GcReport> {
    const h = this.host;
    if (!dryRun) await this.reapDeadRuns();
    const candidates = this.orphans(await h.backend.list(h.owner));
    if (dryRun) return { orphans: candidates.map((o) => o.ref), dryRun };
    return { orphans: await this.removeOrphans(candidates), dryRun };
  }
}
