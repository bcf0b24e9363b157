/**
 * `atelier simulate [--seed N] [--runs N] [--commands N] [--backend fake|overlay] [--reproduce DIR] [--crash-points] [--json]`:
 * property-based runs of the engine against the fake backend (or a real overlay store) with crashes and faults (see
 * `engine/simulate/index.ts`). Prints a summary; a failure prints its seed, fast-check path and
 * reproduction directory, and exits 1. `--reproduce DIR` replays a reproduction directory.
 *
 * The CLI wires it as a subcommand; it also runs on its own:
 * `node --import tsx cli/simulate.ts --seed 1 --runs 50`.
 *
 * @example
 * ```ts
 * import { simulateCommand } from './cli/simulate.ts';
 * process.exitCode = await simulateCommand(['--seed', '1', '--runs', '50']);
 * ```
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { enumerateCrashPoints, readRepro, replaySteps, simulate, SIM_BACKENDS, type SimBackendKind } from '../simulate/index.ts';
import { announceSeed } from '../simulate/seed.ts';

export interface SimulateIo {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
}

export const SIMULATE_HELP = `Usage: atelier simulate [options]

Property-based runs against the fake backend (or a real overlay store): commands, concurrent
pairs, crashes, failing backend calls, torn journal writes and reboots drawn from a seed; eight
invariants checked after every step and restart.

Options:
  --seed N          fast-check seed (default: a new one, printed)
  --runs N          property runs (default 100)
  --commands N      most steps per run (default 40)
  --backend B       the backend the worlds run on: fake (default; in memory) or overlay (a real
                    overlay store under each world's directory, faults injected around it;
                    driver overlayfs, so it needs root; much slower)
  --path P          replay one counterexample (the path printed with a failure)
  --time-limit S    stop starting runs after S seconds
  --out DIR         where a failure's reproduction directory goes
  --reproduce DIR   replay a reproduction directory exactly
  --crash-points    enumerate every crash point of every op instead
  --json            print the report as JSON
  -h, --help        this text
`;

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} needs a whole number, not "${v}"`);
  return n;
}

/** Run `atelier simulate` with the arguments after `simulate`; resolves to the exit code. */
export async function simulateCommand(argv: readonly string[], io: SimulateIo = process): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (e) {
    io.stderr.write(`atelier simulate: ${(e as Error).message}\n\n${SIMULATE_HELP}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(SIMULATE_HELP);
    return 0;
  }
  const json = values.json === true;
  const backend = (values.backend ?? 'fake') as SimBackendKind;
  if (!SIM_BACKENDS.includes(backend)) {
    io.stderr.write(`atelier simulate: --backend must be one of ${SIM_BACKENDS.join(', ')}, not "${values.backend}"\n\n${SIMULATE_HELP}`);
    return 2;
  }
  const out = (s: string) => io.stdout.write(`${s}\n`);
  try {
    if (values.reproduce) {
      const repro = readRepro(values.reproduce);
      out(`replaying ${values.reproduce}: ${repro.steps.length} steps (seed ${repro.seed}${repro.fc ? `, fast-check path "${repro.fc.path}"` : ''})`);
      const r = await replaySteps(repro);
      if (json) out(JSON.stringify({ reproduced: r.failure !== null, failure: r.failure && { invariant: r.failure.invariant, message: r.failure.message, atStep: r.failure.atStep }, stats: r.stats }));
      else if (r.failure) out(`reproduced at step ${r.failure.atStep + 1}: ${r.failure.message}`);
      else out(`did not fail: all ${r.stats.steps} steps held every invariant (fixed?)`);
      return r.failure ? 1 : 0;
    }
    if (values['crash-points']) {
      const r = await enumerateCrashPoints({ backend, log: (l) => io.stderr.write(`${l}\n`) });
      if (json) out(JSON.stringify(r));
      else {
        for (const [name, s] of Object.entries(r.byScenario)) out(`  ${name}: ${s.points} crash points (${s.appends} journal appends, ${s.calls} backend calls)`);
        out(`${r.points} crash points checked in ${(r.elapsedMs / 1000).toFixed(1)} s: ${r.failures.length ? `${r.failures.length} failed` : 'all invariants held'}`);
      }
      return r.failures.length ? 1 : 0;
    }
    // A run without a seed gets a new one, printed first: a failure (or a hang) can be replayed.
    const seed = int(values.seed, 'seed') ?? announceSeed((s) => out(`seed ${s}`));
    const tl = int(values['time-limit'], 'time-limit');
    const r = await simulate({
      seed, backend, ...(int(values.runs, 'runs') !== undefined ? { runs: int(values.runs, 'runs')! } : {}),
      ...(int(values.commands, 'commands') !== undefined ? { commands: int(values.commands, 'commands')! } : {}),
      ...(values.path ? { path: values.path } : {}), ...(values.out ? { failureDir: values.out } : {}), ...(tl ? { timeLimitMs: tl * 1000 } : {}),
    });
    if (json) out(JSON.stringify(r));
    else {
      out(`seed ${r.seed}${backend !== 'fake' ? ` (${backend})` : ''}: ${r.runs} runs, ${r.commands} commands (${r.steps} steps, ${r.restarts} restarts, ${r.crashes} crashes, ${r.reboots} reboots) in ${(r.elapsedMs / 1000).toFixed(1)} s, ${r.commandsPerSecond.toFixed(0)} commands/s`);
      if (!r.failure) out('all 10 invariants held after every step and restart');
      else {
        out(`FAILED: ${r.failure.message}`);
        out(`seed ${r.failure.seed}, fast-check path "${r.failure.path}"; steps:`);
        for (const [i, s] of r.failure.steps.entries()) out(`  ${i + 1}. ${s}`);
        out(r.failure.reproduced ? `reproduction written to ${r.failure.dir}\nreplay it with: atelier simulate --reproduce ${r.failure.dir}` : `the shrunk steps did not fail again when replayed; replay with --seed ${r.failure.seed} --path "${r.failure.path}" --runs 1`);
      }
    }
    return r.failure ? 1 : 0;
  } catch (e) {
    io.stderr.write(`atelier simulate: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      seed: { type: 'string' }, runs: { type: 'string' }, commands: { type: 'string' }, path: { type: 'string' }, backend: { type: 'string' },
      'time-limit': { type: 'string' }, out: { type: 'string' }, reproduce: { type: 'string' },
      'crash-points': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = await simulateCommand(process.argv.slice(2));
