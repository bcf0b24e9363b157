#!/usr/bin/env node
// The `atelier` executable: the compiled CLI (`npm run build` writes dist/; `npm ci` and `npm pack`
// run it through `prepare`).
//
// `atelier --version` alone is answered here, before the CLI (commander and the rest) is loaded:
// it is what scripts run to probe for atelier, and it should cost little more than node itself.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { ATELIER_VERSION } = await import('../dist/engine/version.js');
  process.stdout.write(`${ATELIER_VERSION}\n`);
} else {
  const { main } = await import('../dist/cli/atelier.js');
  const code = await main(process.argv);
  // Exit explicitly once stdout is flushed, so a stray handle (a backend socket, a timer) can never
  // keep a finished command alive.
  process.stdout.write('', () => process.exit(code));
}
