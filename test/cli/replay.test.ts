import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli } from '../support/cli.ts';
import { fixture, V1, V2 } from '../engine/helpers.ts';

const cli = runCli;

test('replay shows each decision and the state at any sequence number, read-only', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    const afterLaunch = f.engine.state.seq;
    await f.engine.refresh(V2);
    await f.engine.close();
    const all = await cli(['--state-dir', f.stateDir, '--json', 'replay']);
    assert.is(all.code, 0);
    const full = JSON.parse(all.out);
    assert.equal(full.state.workshops.nav2.sdks.map((l: { hash: string }) => l.hash), V2.sdks.map((s) => s.hash));
    const early = JSON.parse((await cli(['--state-dir', f.stateDir, '--json', 'replay', '--until', String(afterLaunch)])).out);
    assert.is(early.seq, afterLaunch);
    assert.equal(early.state.workshops.nav2.sdks.map((l: { hash: string }) => l.hash), V1.sdks.map((s) => s.hash));
    const text = await cli(['--state-dir', f.stateDir, 'replay', '--events', '--workshop', 'nav2']);
    assert.match(text.out, /do#\d+ setup-base nav/);
    assert.match(text.out, /-> cleanup/);
  } finally {
    await f.cleanup();
  }
});

test('replay reports a torn tail without cutting it', async () => {
  const f = await fixture();
  try {
    await f.engine.launch(V1);
    await f.engine.close();
    const dir = join(f.stateDir, 'journal');
    const seg = join(dir, readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort().at(-1)!);
    appendFileSync(seg, '{"seq":99,"v":1,"ty');
    const before = readFileSync(seg);
    const r = JSON.parse((await cli(['--state-dir', f.stateDir, '--json', 'replay'])).out);
    assert.is(r.torn.bytes, 19);
    assert.equal(readFileSync(seg), before, 'the debugger changes nothing');
    assert.is((await cli(['--state-dir', f.stateDir, 'replay', '--until', 'x'])).code, 2);
  } finally {
    await f.cleanup();
  }
});

test.run();
