/**
 * `atelier ARGS` in this process, as the CLI tests run it: stdout and stderr captured, the exit code
 * returned, and stdout parsed when it is one JSON object (`--json`).
 *
 * @example
 * ```ts
 * const r = await runCli(['--json', 'replay', '--journal', dir, 'at', '3']);
 * r.code; r.json.state.workshops;
 * ```
 */
import { main } from '../../cli/atelier.ts';

export interface CliRun {
  code: number;
  out: string;
  err: string;
  /** stdout as JSON, or null when it is not (human output). */
  json: any;
}

export async function runCli(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<CliRun> {
  let out = '';
  let err = '';
  const io = { stdout: { write: (s: string) => ((out += s), true) }, stderr: { write: (s: string) => ((err += s), true) }, env };
  const code = await main(['node', 'atelier', ...args], io as never);
  let json: any = null;
  try {
    json = JSON.parse(out);
  } catch {
    // human output
  }
  return { code, out, err, json };
}
