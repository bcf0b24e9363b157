/**
 * The domain core's runnable `@example`s, read out of the source and run as written: a statement
 * followed by a literal comment (`plan.do.map((s) => s.label); // ['create', ...]`) must evaluate
 * to that value (deep equality). The names each example uses are put in its scope.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { transition } from 'xstate';
import { planLaunch } from '../../machines/plan.ts';
import { judgeProbe, lifeAfter } from '../../machines/layer.ts';
import { containerAfter } from '../../machines/container.ts';
import { resolveWorkshop, workshopMachine } from '../../machines/workshop.ts';
import { mermaidOf } from '../../machines/diagram.ts';
import { containerMachine } from '../../machines/container.ts';

/** The first ```ts block after `@example` in a file's header comment. */
function example(file: string): string {
  const text = readFileSync(new URL(`../../machines/${file}`, import.meta.url), 'utf8');
  const header = text.slice(0, text.indexOf('*/'))
    .split('\n')
    .map((l) => l.replace(/^\s*\* ?/, ''))
    .join('\n');
  const m = /@example[^\n]*\n```ts\n([\s\S]*?)\n```/.exec(header);
  assert.ok(m, `${file} has an @example`);
  return m[1]!;
}

/** Run `code` with `scope`; each `EXPR; // LITERAL` line asserts EXPR deep-equals LITERAL. */
function run(file: string, scope: Record<string, unknown>): number {
  let checks = 0;
  const lines = example(file).split('\n').map((line) => {
    const m = /^(.*?);\s*\/\/\s*(.*)$/.exec(line);
    if (!m) return line;
    // A word literal (null, true, 12) may be followed by prose; a quoted or bracketed one runs to the end.
    const literal = /^(null|true|false|\d+)\b/.exec(m[2]!)?.[1] ?? (/^['"[{]/.test(m[2]!) ? m[2]! : null);
    if (literal === null) return line;
    checks++;
    return `__check(${JSON.stringify(line.trim())}, ${m[1]}, ${literal});`;
  });
  const check = (text: string, got: unknown, want: unknown) => assert.equal(got, want, text);
  new Function(...Object.keys(scope), '__check', lines.join('\n'))(...Object.values(scope), check);
  return checks;
}

const target = { space: 'workshops', name: 'nav2-1a2b3c4d' } as const;

test('machines/plan.ts: its example plans a launch', () => {
  assert.is(run('plan.ts', { planLaunch }), 1);
});

test('machines/layer.ts: its example judges a probe and reads the lifecycle table', () => {
  assert.is(run('layer.ts', { judgeProbe, lifeAfter, target }), 2);
});

test('machines/container.ts: its example walks the container chart', () => {
  assert.is(run('container.ts', { containerAfter }), 2);
});

test('machines/workshop.ts: its example starts a launch on the chart', () => {
  assert.is(run('workshop.ts', { resolveWorkshop, transition, workshopMachine }), 2);
});

test('machines/diagram.ts: its example draws the container chart', () => {
  assert.ok(mermaidOf(containerMachine).startsWith('stateDiagram-v2\n  [*] --> absent\n'));
});

test.run();
