#!/usr/bin/env node
// The `atelier` executable: the compiled CLI (`npm run build` writes dist/; `npm ci` and `npm pack`
// run it through `prepare`).
import { main } from '../dist/cli/atelier.js';

const code = await main(process.argv);
// Exit explicitly once stdout is flushed, so a stray handle (a backend socket, a timer) can never
// keep a finished command alive.
process.stdout.write('', () => process.exit(code));
