/**
 * The diagrams in machines/README.md are drawn from the charts' definitions: this fails when the
 * drawing and the definition differ (redraw with `npm run diagrams`).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { CHARTS, drawInto, mermaidOf } from '../../machines/diagram.ts';

const README = readFileSync(new URL('../../machines/README.md', import.meta.url), 'utf8');

test('machines/README.md holds a diagram of every chart', () => {
  for (const name of Object.keys(CHARTS)) assert.ok(README.includes(`<!-- diagram:${name} -->`), `a diagram of the ${name} chart`);
});

test('each diagram is the one its chart draws (npm run diagrams redraws them)', () => {
  assert.fixture(README, drawInto(README));
});

test('a diagram shows every state and every guarded transition of its chart', () => {
  const text = mermaidOf(CHARTS.workshop!);
  for (const state of ['absent', 'ready', 'broken', 'busy_do', 'busy_undo', 'busy_cleanup']) assert.match(text, new RegExp(`as ${state}\\b`));
  assert.match(text, /busy_do --> busy_undo : step\.failed \[hasUndo\] \/ enterPhase, request/);
  assert.match(text, /ready --> ready : refresh \[hasStash\] \/ reject/);
});

test.run();
