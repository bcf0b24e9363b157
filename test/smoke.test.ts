import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AtelierError, exitCodeFor } from '../machines/errors.ts';

test('exit codes map error codes', () => {
  assert.is(exitCodeFor('LOCKED'), 3);
  assert.is(new AtelierError('BUSY', 'x').code, 'BUSY');
});
test.run();
