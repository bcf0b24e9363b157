import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { simulate } from '../../simulate/index.ts';
import { SIM_COMMANDS, SIM_RUNS, SIM_SEED } from './budget.ts';

test(`bounded simulation: ${SIM_RUNS} runs of up to ${SIM_COMMANDS} steps hold every invariant`, async () => {
  console.log(`simulate: seed ${SIM_SEED}, ${SIM_RUNS} runs, up to ${SIM_COMMANDS} steps each`);
  const r = await simulate({ seed: SIM_SEED, runs: SIM_RUNS, commands: SIM_COMMANDS });
  console.log(`simulate: ${r.runs} runs, ${r.commands} commands, ${r.restarts} restarts (${r.crashes} crashes, ${r.reboots} reboots) in ${(r.elapsedMs / 1000).toFixed(1)} s (${r.commandsPerSecond.toFixed(0)} commands/s)`);
  if (r.failure) {
    assert.unreachable(
      `${r.failure.message}\nseed ${r.failure.seed}, fast-check path "${r.failure.path}"\nsteps:\n${r.failure.steps.map((s, i) => `  ${i + 1}. ${s}`).join('\n')}\n` +
        `reproduction: ${r.failure.dir} (atelier simulate --reproduce ${r.failure.dir}); keep it in fixtures/simulate/ once fixed`,
    );
  }
  assert.ok(r.runs >= SIM_RUNS);
});

test.run();
