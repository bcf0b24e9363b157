/**
 * Child process for the LXD crash tests (`test/engine/lxd-engine.test.ts`): opens an engine on the
 * LXD backend and runs one command, printing each progress event as a JSON line on stdout so the
 * parent can SIGKILL it at a chosen step. Not a test file (no `.test.ts`).
 *
 * Usage: `node --import tsx test/engine/lxd-crash-child.ts '{"stateDir":...,"runDir":...,"owner":...,"project":...,"cmd":"refresh"}'`
 * Prints `{"progress":{phase,step,label,status}}` lines, then `{"done":true}` or `{"error":{code,message}}`.
 */
import { createLxdBackend } from '../../backends/lxd/index.ts';
import { loadWorkshopFile, openEngine } from '../../engine/index.ts';

interface ChildArgs {
  stateDir: string;
  runDir: string;
  owner: string;
  project: string;
  socket?: string;
  cmd: 'launch' | 'refresh';
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
const line = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

const backend = createLxdBackend({ owner: args.owner, stopTimeoutS: 0, ...(args.socket ? { socket: args.socket } : {}) });
try {
  const engine = await openEngine({ stateDir: args.stateDir, runDir: args.runDir, backend, owner: args.owner });
  line({ opened: true });
  const spec = await loadWorkshopFile(args.project, { defaultBase: backend.defaultBase });
  const onProgress = (p: { phase: string; step: number; label: string; status: string }) =>
    line({ progress: { phase: p.phase, step: p.step, label: p.label, status: p.status } });
  if (args.cmd === 'launch') await engine.launch(spec, { onProgress });
  else await engine.refresh(spec, { onProgress });
  line({ done: true });
  await engine.close();
} catch (e) {
  const err = e as { code?: string; message?: string };
  line({ error: { code: err.code ?? 'UNKNOWN', message: err.message ?? String(e) } });
  process.exitCode = 1;
} finally {
  await backend.close();
}
