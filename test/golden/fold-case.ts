/**
 * Folding a golden case as start-up would: on a copy (opening a journal repairs a torn tail, and
 * the fixtures are never touched), from the latest checkpoint or, with `fromCheckpoint: false`,
 * from the first record.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFakeBackend } from '../../backends/fake/index.ts';
import type { FakeImage } from '../../backends/fake/store.ts';
import { openEngineImpl as openEngine } from '../../engine/engine.ts';
import { openFolded } from '../../engine/replay.ts';
import { sequentialIds, steppingClock } from '../../engine/ids.ts';
import { evolveVolatile, initialVolatile } from '../../machines/index.ts';
import { openJournal } from '../../events/journal.ts';
import { goldenView, sortedJson } from './view.ts';

export async function foldCase(caseDir: string, opts: { fromCheckpoint?: boolean } = {}): Promise<string> {
  const tmp = mkdtempSync(join(tmpdir(), 'atelier-golden-fold-'));
  try {
    cpSync(join(caseDir, 'state'), join(tmp, 'state'), { recursive: true });
    if (opts.fromCheckpoint === false) rmSync(join(tmp, 'state', 'checkpoints'), { recursive: true, force: true });
    const { journal, fold } = await openFolded(join(tmp, 'state', 'journal'));
    await journal.close();
    const vs = initialVolatile();
    if (existsSync(join(caseDir, 'run', 'volatile'))) {
      cpSync(join(caseDir, 'run'), join(tmp, 'run'), { recursive: true });
      const v = await openJournal({ dir: join(tmp, 'run', 'volatile'), durable: false });
      for (const r of v.tail) evolveVolatile(vs, r);
      await v.journal.close();
    }
    return goldenView(fold, vs);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Open an engine on a copy of a case with its backend (opening reconciles), close it, and return
 * what it left: workshops, objects, ops and containers without the times a later start stamps
 * (`updatedAt`), and the backend's objects. Ids and clock are fixed, so this is deterministic.
 */
export async function openCase(caseDir: string): Promise<string> {
  const tmp = mkdtempSync(join(tmpdir(), 'atelier-golden-open-'));
  try {
    cpSync(join(caseDir, 'state'), join(tmp, 'state'), { recursive: true });
    if (existsSync(join(caseDir, 'run'))) cpSync(join(caseDir, 'run'), join(tmp, 'run'), { recursive: true });
    const backend = createFakeBackend({ seed: 99 });
    backend.load(JSON.parse(readFileSync(join(caseDir, 'backend.json'), 'utf8')) as FakeImage);
    const engine = await openEngine({ stateDir: join(tmp, 'state'), runDir: join(tmp, 'run'), backend, owner: 'alice', ids: sequentialIds(10_000), clock: steppingClock('2027-01-01T00:00:00.000Z') });
    await engine.close();
    const view = JSON.parse(await foldCase(tmp)) as Record<string, any>;
    const workshops = Object.fromEntries(Object.entries(view.workshops as Record<string, any>).map(([k, w]) => [k, { ...w, updatedAt: undefined }]));
    const objects = backend.dump().objects.map((o) => ({ space: o.space, name: o.name, tags: o.tags, status: o.status, identity: o.identity }));
    return `${sortedJson({ workshops, objects: view.objects, ops: view.ops, containers: view.volatile.containers, backend: objects })}\n`;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
