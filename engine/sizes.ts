/**
 * Sizes as people write and read them: `parseSize('64M')`, `formatBytes(1536)`. Its own module,
 * with no imports, because the CLI's output loads it for every command.
 *
 * @example
 * ```ts
 * parseSize('1.5M'); // 1572864
 * formatBytes(1572864); // '1.5 MiB'
 * ```
 */
/**
 * The default free-space watermark of degraded mode (`space.ts`): 32 MiB (a journal segment is
 * 4 MiB; a checkpoint of 1,000 workshops about 1 MiB).
 */
export const DEFAULT_MIN_FREE = 32 * 1024 * 1024;

/** `1.5 MiB`, `12 KiB`, `0 B`: sizes as messages and `atelier df` print them. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/**
 * `64M`, `1G`, `512K`, `1048576`: a size in bytes (binary units, an optional `i`/`B`), or null when
 * it is not one. What `--min-free` and `ATELIER_MIN_FREE` take.
 */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return null;
  const n = Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Number.isFinite(n) ? Math.round(n) : null;
}

