/**
 * The README's replay debugger section shows real output: every `$ atelier replay ...` example in it
 * is run here (on the repository's fixtures, from the repository's root) and must print exactly
 * what the README shows.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../../cli/atelier.ts';

const ROOT = join(import.meta.dirname, '../..');

/** The section's examples: each `$ atelier ...` line inside a text block, with the lines after it up to the next. */
function examples(): { args: string[]; expected: string }[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## The replay debugger');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const out: { args: string[]; expected: string }[] = [];
  for (const block of section.split('```text\n').slice(1).map((b) => b.slice(0, b.indexOf('```')))) {
    for (const chunk of block.split(/^(?=\$ atelier )/m)) {
      const [cmd, ...rest] = chunk.split('\n');
      if (!cmd!.startsWith('$ atelier ')) continue;
      out.push({ args: cmd!.slice('$ atelier '.length).split(' '), expected: rest.join('\n').replace(/\n$/, '') });
    }
  }
  return out;
}

test('every replay example in the README prints what the README shows', async () => {
  const list = examples();
  assert.ok(list.length >= 9, `found ${list.length} examples`);
  const cwd = process.cwd();
  const tmp = mkdtempSync(join(tmpdir(), 'atelier-readme-'));
  process.chdir(ROOT);
  try {
    for (const example of list) {
      let { args, expected } = example;
      // An example that writes a file writes it into a temporary directory here.
      const o = args.indexOf('-o');
      if (o >= 0) {
        const file = join(tmp, 'out.html');
        expected = expected.split(args[o + 1]!).join(file);
        args = [...args.slice(0, o + 1), file, ...args.slice(o + 2)];
      }
      let out = '';
      const io = { stdout: { write: (s: string) => ((out += s), true) }, stderr: { write: (s: string) => ((out += s), true) }, env: process.env };
      await main(['node', 'atelier', ...args], io as never);
      assert.fixture(out.replace(/\n$/, ''), expected, `atelier ${args.join(' ')}`);
    }
  } finally {
    process.chdir(cwd);
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
