/**
 * `npm run diagrams`: draws each chart (`machines/diagram.ts`) into `machines/README.md`, between
 * its `<!-- diagram:NAME -->` and `<!-- /diagram:NAME -->` markers. `--check` writes nothing and
 * exits 1 when the README differs from the definitions (the test does the same).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { drawInto } from '../machines/diagram.ts';

const file = fileURLToPath(new URL('../machines/README.md', import.meta.url));
const before = readFileSync(file, 'utf8');
const after = drawInto(before);
if (process.argv.includes('--check')) {
  if (after !== before) {
    console.error('machines/README.md differs from the charts: run `npm run diagrams`');
    process.exit(1);
  }
} else if (after !== before) {
  writeFileSync(file, after);
  console.log('machines/README.md: diagrams redrawn');
}
