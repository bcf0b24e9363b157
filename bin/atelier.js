#!/usr/bin/env node
// The `atelier` executable: registers tsx so Node runs the TypeScript sources as they are, then
// hands over to cli/atelier.ts. The CLI is imported dynamically because a static import would be
// hoisted above register().
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/atelier.ts');
const code = await main(process.argv);
// Exit explicitly once stdout is flushed, so a stray handle (a backend socket, a timer) can never
// keep a finished command alive.
process.stdout.write('', () => process.exit(code));
