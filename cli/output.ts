/**
 * What the CLI prints: human-readable text, or with `--json` exactly one JSON object on stdout per
 * command, errors included:
 *
 * ```
 * {"ok":true,"workshop":{...}}
 * {"ok":false,"error":{"code":"INVALID_NAME","message":"...","exitCode":2}}
 * ```
 *
 * The JSON shapes are a stable interface for scripts: fields are only ever added.
 *
 * @example
 * ```ts
 * const out = new Output({ json: false });
 * out.result({ workshop: view }, () => formatWorkshop(view));
 * out.error(err); // prints, returns the exit code
 * ```
 */
import { exitCodeFor } from '../machines/errors.ts';
import type { GcReport, ReconcileReport, UsageReport, WorkshopView } from '../engine/api.ts';
import { formatBytes } from '../engine/sizes.ts';

interface Writable {
  write(chunk: string): unknown;
}

/** The code and message of anything thrown; errors without a code are bugs (`INTERNAL`). */
export function describeError(e: unknown): { code: string; message: string } {
  const code = (e as { code?: unknown })?.code;
  const message = e instanceof Error ? e.message : String(e);
  if (typeof code === 'string' && /^[A-Z][A-Z_]*$/.test(code)) return { code, message };
  return { code: 'INTERNAL', message: `internal error (please report it): ${message}` };
}

export class Output {
  readonly json: boolean;
  private readonly stdout: Writable;
  private readonly stderr: Writable;

  constructor(opts: { json: boolean; stdout?: Writable; stderr?: Writable }) {
    this.json = opts.json;
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
  }

  /** Print a command's result: `{"ok":true,...fields}` in JSON mode, else `human()`. */
  result(fields: Record<string, unknown>, human: () => string): void {
    if (this.json) this.stdout.write(`${JSON.stringify({ ok: true, ...fields })}\n`);
    else {
      const text = human();
      if (text !== '') this.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /** Print an error (stdout in JSON mode, stderr otherwise) and return its exit code. */
  error(e: unknown, extra: Record<string, unknown> = {}): number {
    const { code, message } = describeError(e);
    const exitCode = exitCodeFor(code);
    if (this.json) this.stdout.write(`${JSON.stringify({ ok: false, ...extra, error: { code, message, exitCode } })}\n`);
    else this.stderr.write(`atelier: ${message} [${code}]\n`);
    return exitCode;
  }

  /** A note for humans (stderr); silent in JSON mode. */
  note(text: string): void {
    if (!this.json) this.stderr.write(`${text}\n`);
  }
}

/** `busybox (backend default)` or `ubuntu@24.04`. */
export function describeBase(w: Pick<WorkshopView, 'base' | 'defaultBase'>): string {
  return w.defaultBase ? `${w.base} (backend default: the workshop file names no base)` : `${w.base} (from the workshop file)`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** `atelier show`: every field of one workshop, and what the backend isolates it by (`isolation`). */
export function formatWorkshop(w: WorkshopView, isolation?: string): string {
  const lines: [string, string][] = [
    ['workshop', w.name],
    ['status', w.status + (w.op ? ` (${w.op.kind} ${w.op.id}, ${w.op.phase})` : '')],
    // The wanted status (the journal's); a journal from before start/stop records none.
    ...(w.running === undefined ? [] : [['wanted', w.running ? 'running (atelier stop stops it)' : 'stopped (atelier start starts it)'] as [string, string]]),
    ['instance', w.instance],
    ['project', w.projectId],
    ['base', describeBase(w)],
  ];
  if (w.sdks.length === 0) lines.push(['sdks', '(none)']);
  w.sdks.forEach((s, i) => lines.push([i === 0 ? 'sdks' : '', `${s.sdk}  layer ${s.layer}  hash ${s.hash}`]));
  lines.push(['stash', w.stash ? `${w.stash.layer} (+${w.stash.sdkLayers.length} sdk copies, op ${w.stash.op})` : '(none)']);
  if (w.identity) lines.push(['identity', `mac ${w.identity.mac}  uuid ${w.identity.uuid}`]);
  if (w.lastError) lines.push(['last error', `${w.lastError.code} in ${w.lastError.op}: ${w.lastError.message}`]);
  if (isolation) lines.push(['isolation', isolation]);
  lines.push(['created', w.createdAt], ['updated', w.updatedAt]);
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

/** `atelier list`: one row per workshop. */
export function formatList(ws: readonly WorkshopView[]): string {
  if (ws.length === 0) return 'no workshops (create one with `atelier launch workshop.yaml`)';
  const rows = [['NAME', 'STATUS', 'BASE', 'SDKS', 'STASH', 'INSTANCE']];
  for (const w of ws) {
    rows.push([w.name, w.status, w.base + (w.defaultBase ? '*' : ''), w.sdks.map((s) => s.sdk).join(',') || '-', w.stash ? 'yes' : '-', w.instance]);
  }
  const starred = ws.some((w) => w.defaultBase) ? '\n(* the backend default base)' : '';
  return table(rows) + starred;
}

/** After launch/refresh/...: one line. */
export function formatDone(verb: string, w: WorkshopView): string {
  const sdks = w.sdks.map((s) => s.sdk).join(', ') || 'no SDKs';
  return `${verb} workshop "${w.name}" (${w.instance}): ${w.status}, base ${w.base}${w.defaultBase ? ' (default)' : ''}, ${sdks}`;
}

/** `atelier gc`: the orphans removed and, with `--cache`, the cached SDK layers evicted (or, dry, that would be). */
export function formatGc(r: GcReport): string {
  const evicted = r.evicted ?? [];
  if (r.orphans.length === 0 && evicted.length === 0) return 'no garbage: every owned backend object is accounted for';
  const lines: string[] = [];
  if (r.orphans.length > 0) lines.push(`${r.dryRun ? 'would remove' : 'removed'} ${r.orphans.length} object(s):`, ...r.orphans.map((o) => `  ${o.space}/${o.name}`));
  if (evicted.length > 0) lines.push(`${r.dryRun ? 'would evict' : 'evicted'} ${evicted.length} cached SDK layer(s):`, ...evicted.map((o) => `  ${o.space}/${o.name}`));
  return lines.join('\n');
}

/**
 * `atelier df`, as `podman system df` and `lxc storage info` show it: the disks first (degraded
 * mode named when a disk is full), then one line per object, then the journal's own files.
 */
export function formatDf(r: UsageReport): string {
  const disks = table([
    ['DISK', 'WHERE', 'SIZE', 'FREE', 'STATE'],
    ...r.disks.map((d) => [d.disk, d.where, formatBytes(d.total), formatBytes(d.free), d.full ? 'FULL' : 'ok']),
  ]);
  const state = r.degraded
    ? `degraded: ${r.degraded.message}.\nlaunch, refresh, stash, unstash, restore and run are refused until ${formatBytes(r.minFree)} is free; remove and gc work.`
    : `not degraded (commands that make things need ${formatBytes(r.minFree)} free on each disk)`;
  const kinds: Record<string, string> = { workshop: 'workshop', container: 'container', sdk: 'layer', stash: 'stash', 'stash-sdk': 'stash layer' };
  const objects = [...r.objects].sort((a, b) => ((a.workshop ?? '~') < (b.workshop ?? '~') ? -1 : (a.workshop ?? '~') > (b.workshop ?? '~') ? 1 : a.ref.name < b.ref.name ? -1 : 1));
  const held = objects.length === 0
    ? 'no objects'
    : table([['WORKSHOP', 'TYPE', 'NAME', 'SIZE'], ...objects.map((o) => [o.workshop ?? (o.shared ? (o.shared.length ? `(shared: ${o.shared.join(', ')})` : '(cache)') : '(orphan)'), kinds[o.kind] ?? o.kind, o.ref.name, o.bytes === null ? '-' : formatBytes(o.bytes)])]);
  const total = objects.reduce((n, o) => n + (o.bytes ?? 0), 0);
  const reserve = r.journal.reserve
    ? `including a ${formatBytes(r.journal.reserve)} reserve kept for remove and gc on a full disk`
    : 'no reserve: the next command that opens the engine writes one, if there is room';
  const journal = `journal ${r.journal.dir}: ${formatBytes(r.journal.bytes)} in segments and checkpoints (${reserve})`;
  return [disks, state, '', held, `objects: ${formatBytes(total)}${objects.some((o) => o.bytes === null) ? ' (- : the backend does not report it)' : ''}`, journal].join('\n');
}

export function formatReconcile(r: ReconcileReport): string {
  const restarted = r.restarted ? `, ${r.restarted} workshop(s) wanted running started again` : '';
  return `reconciled: ${r.pending} pending effect(s) settled, ${r.orphans} orphan(s) removed, ${r.missing} missing object(s) recorded${restarted}`;
}

export function formatBases(bases: readonly string[], defaultBase: string): string {
  if (bases.length === 0) return `no bases registered (default base: ${defaultBase})`;
  return bases.map((b) => (b === defaultBase ? `${b} (default)` : b)).join('\n');
}
