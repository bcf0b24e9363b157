#!/usr/bin/env node
// The `atelierd` executable: the compiled daemon (see daemon/atelierd.ts). It runs until SIGTERM
// or SIGINT, then exits once its log is flushed.
import v8 from 'node:v8';

// A long-lived daemon allocates a little for every request and record: a larger young generation
// (V8's default semi-space is 16 MiB at most) lets most of it die young, for fewer scavenges.
// Set before the heap grows; measured in bench/README.md ("atelierd").
v8.setFlagsFromString('--max-semi-space-size=32');
const { main } = await import('../dist/daemon/atelierd.js');

const code = await main(process.argv);
process.stderr.write('', () => process.exit(code));
