/**
 * Step-by-step progress for long commands (launch, refresh, ...), fed by the engine's
 * `onProgress` callback.
 *
 * - On a TTY: one line per step, rewritten in place while it runs (spinner + elapsed time), then
 *   frozen as `✓` or `✗` with its final time.
 * - Not a TTY (CI logs, pipes): plain, append-only lines, one when a step starts and one when it
 *   ends, so a hung step is visible in a log.
 * - `--json`: nothing (stdout carries exactly one JSON object).
 *
 * Written by hand (about 40 lines of ANSI `\r\x1b[2K`) rather than with `log-update`: that library
 * pulls in six dependencies to redraw one region, while we only ever redraw the current line.
 * Progress goes to stderr so stdout stays the command's result.
 *
 * @example
 * ```ts
 * const progress = createProgress({ mode: 'tty', stream: process.stderr });
 * await engine.launch(spec, { onProgress: progress.onProgress });
 * progress.stop();
 * ```
 */
import type { Progress } from '../engine/api.ts';

export type ProgressMode = 'tty' | 'plain' | 'off';

export interface ProgressRenderer {
  readonly onProgress: (p: Progress) => void;
  /** Freeze any line still running (e.g. when the command throws) and stop the timer. */
  stop(): void;
}

interface Writable {
  write(chunk: string): unknown;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const CLEAR_LINE = '\r\x1b[2K';

/** `1.23s`, or `1m05s` past a minute. */
export function formatElapsed(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** `do 2/5 setup-base ros2` (the engine's step index is 0-based). */
export function describeStep(p: Progress): string {
  const phase = p.phase === 'do' ? '' : `${p.phase} `;
  return `${phase}${p.step + 1}/${p.total} ${p.label}`;
}

/**
 * A renderer for one command. `now` is injectable so tests do not depend on wall time.
 *
 * @example
 * const r = createProgress({ mode: 'plain', stream: process.stderr }); r.onProgress(p); r.stop();
 */
export function createProgress(opts: { mode: ProgressMode; stream: Writable; now?: () => number; intervalMs?: number }): ProgressRenderer {
  const { mode, stream } = opts;
  const now = opts.now ?? (() => performance.now());
  if (mode === 'off') return { onProgress: () => {}, stop: () => {} };

  // The step currently running: the engine runs one step of a command at a time.
  let current: { key: string; text: string; started: number } | null = null;
  let frame = 0;
  let timer: NodeJS.Timeout | null = null;

  const draw = (): void => {
    if (!current) return;
    frame = (frame + 1) % FRAMES.length;
    stream.write(`${CLEAR_LINE}  ${FRAMES[frame]} ${current.text}  ${formatElapsed(now() - current.started)}`);
  };
  const finish = (ok: boolean): void => {
    if (!current) return;
    const elapsed = formatElapsed(now() - current.started);
    if (mode === 'tty') stream.write(`${CLEAR_LINE}  ${ok ? '✓' : '✗'} ${current.text}  ${elapsed}\n`);
    else stream.write(`${ok ? 'done' : 'FAILED'}  ${current.text} (${elapsed})\n`);
    current = null;
    if (timer) clearInterval(timer);
    timer = null;
  };

  const onProgress = (p: Progress): void => {
    const key = `${p.op}/${p.phase}/${p.step}`;
    if (p.status === 'started') {
      if (current && current.key !== key) finish(true); // a step we never heard end: close its line
      current = { key, text: describeStep(p), started: now() };
      if (mode === 'tty') {
        draw();
        timer = setInterval(draw, opts.intervalMs ?? 100);
        timer.unref(); // never keep the process alive just to animate
      } else {
        stream.write(`start ${current.text}\n`);
      }
      return;
    }
    if (!current || current.key !== key) current = { key, text: describeStep(p), started: now() };
    finish(p.status === 'done');
  };

  return {
    onProgress,
    stop: () => {
      if (current) finish(false);
    },
  };
}
