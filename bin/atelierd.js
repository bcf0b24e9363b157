#!/usr/bin/env node
// The `atelierd` executable: the compiled daemon (see daemon/atelierd.ts). It runs until SIGTERM
// or SIGINT, then exits once its log is flushed.
import { main } from '../dist/daemon/atelierd.js';

const code = await main(process.argv);
process.stderr.write('', () => process.exit(code));
