/**
 * atelier's version, from the package.json of the installed package (found by walking up from this
 * file, so it is the same from the sources and from the compiled `dist/`).
 *
 * @example
 * ```ts
 * ATELIER_VERSION; // '0.1.0'
 * ```
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function find(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'atelier' && pkg.version) return pkg.version;
    } catch {
      // not here: one level up
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}

export const ATELIER_VERSION: string = find();
