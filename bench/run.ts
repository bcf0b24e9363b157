/**
 * Benchmark runner: `node --import tsx bench/run.ts [PREFIX]` (or `npm run bench -- PREFIX`).
 *
 * ## Contract for bench files
 *
 * Every `bench/*.bench.ts` is imported, in name order. Each exports
 *
 * ```ts
 * export const figures: BenchEntry[] = [
 *   { name: 'overlay.snapshot', run: async () => ({ name: 'overlay.snapshot', value: 1.2, unit: 'ms' }) },
 *   { name: 'lxd.copy.dir', run: async () => ({ skipped: 'LXD is not installed' }) },
 * ];
 * ```
 *
 * - `name` is dotted, starting with the area (`journal.`, `overlay.`, `lxd.`, `engine.`, `simulate.`,
 *   `replay.`, `cache.`);
 *   the runner runs the entries whose name starts with PREFIX (all of them without one).
 * - `run` returns one `Figure`, several (e.g. a figure and its baseline as separate lines), or
 *   `{ skipped: reason }` when it cannot run here. It should take a few seconds at most.
 * - A `Figure` has `name`, `value`, `unit`, and, when it is compared with something measured in
 *   the same run, `baseline` (same unit); the runner fills `ratio = value / baseline` if absent.
 *   Extra keys (parameters, notes) are printed as they are.
 *
 * ## Output
 *
 * One JSON object a line on stdout: a figure, `{ name, skipped }`, or `{ name, error }` when an
 * entry threw (the runner then exits 1 after running the rest). Progress goes nowhere: the output
 * is meant for `jq`.
 *
 * @example
 * ```sh
 * npm run bench -- journal.append | jq -r '[.name, .value, .unit, .ratio] | @tsv'
 * ```
 */
import fs from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** The same quantity for the thing this is compared with, measured in the same run. */
  readonly baseline?: number;
  /** value / baseline (filled in by the runner when a baseline is given). */
  readonly ratio?: number;
  readonly [extra: string]: unknown;
}

export interface Skip {
  readonly skipped: string;
}

export interface BenchEntry {
  readonly name: string;
  run(): Promise<Figure | Figure[] | Skip>;
}

function round(n: number): number {
  return Number(n.toPrecision(4));
}

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function main(prefix: string): Promise<number> {
  const here = dirname(fileURLToPath(import.meta.url));
  const files = fs.readdirSync(here).filter((n) => n.endsWith('.bench.ts')).sort();
  let failed = 0;
  for (const file of files) {
    let entries: BenchEntry[];
    try {
      const mod = (await import(pathToFileURL(join(here, file)).href)) as { figures?: BenchEntry[] };
      entries = mod.figures ?? [];
    } catch (e) {
      // A broken bench file must not hide the others' figures.
      if (prefix === '' || file.startsWith(prefix.split('.')[0])) {
        emit({ name: file, error: `cannot load: ${(e as Error).message}` });
        failed++;
      }
      continue;
    }
    for (const entry of entries) {
      if (!entry.name.startsWith(prefix)) continue;
      try {
        const out = await entry.run();
        if ('skipped' in out && !Array.isArray(out)) {
          emit({ name: entry.name, skipped: out.skipped });
          continue;
        }
        for (const f of Array.isArray(out) ? out : [out as Figure]) {
          const line: Record<string, unknown> = { ...f, value: round(f.value) };
          if (f.baseline !== undefined) {
            line.baseline = round(f.baseline);
            line.ratio = round(f.ratio ?? f.value / f.baseline);
          }
          emit(line);
        }
      } catch (e) {
        emit({ name: entry.name, error: (e as Error).stack ?? String(e) });
        failed++;
      }
    }
  }
  return failed > 0 ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv[2] ?? '');
}
