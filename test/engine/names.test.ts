import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AtelierError } from '../../machines/errors.ts';
import { didYouMean } from '../../engine/hints.ts';
import {
  instanceName,
  ownerName,
  sdkLayerName,
  stashName,
  stashSdkName,
  validateOwnerName,
  validateProjectId,
  validateSdkName,
  validateWorkshopName,
} from '../../machines/names.ts';

/** Assert `fn` throws an AtelierError with `code` whose message names `mention`. */
function throwsCode(fn: () => unknown, code: string, mention?: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, AtelierError);
    assert.is((e as AtelierError).code, code);
    if (mention !== undefined) assert.ok((e as Error).message.includes(mention), `message ${JSON.stringify((e as Error).message)} should name ${mention}`);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('workshop names: valid', () => {
  for (const n of ['a', 'nav2', 'my-ws', 'a1-b2-c3', 'x'.repeat(40)]) assert.is(validateWorkshopName(n), n);
});

test('workshop names: invalid, naming the name', () => {
  for (const n of ['Nav2', 'a..b', '../x', '-a', 'a-', 'a--b', '1abc', 'a_b', 'a b', 'x'.repeat(41), 'ñ']) {
    throwsCode(() => validateWorkshopName(n), 'INVALID_NAME', JSON.stringify(n));
  }
  throwsCode(() => validateWorkshopName(''), 'INVALID_NAME', 'empty');
  throwsCode(() => validateWorkshopName(42), 'INVALID_NAME', 'string');
});

test('workshop names: the 41-character message says the limit', () => {
  throwsCode(() => validateWorkshopName('x'.repeat(41)), 'INVALID_NAME', '40');
});

test('SDK names: valid, including a leading digit', () => {
  for (const n of ['ros2', '2d', 'a', 'nav2-next', '9-lives', 'agents', 'trying', 'project']) assert.is(validateSdkName(n), n);
});

test('SDK names: invalid and reserved', () => {
  for (const n of ['ROS', '123', 'a..b', '-x', 'x-', 'a--b', 'a_b', 'x'.repeat(41)]) throwsCode(() => validateSdkName(n), 'INVALID_NAME', JSON.stringify(n));
  for (const n of ['agent', 'try-x', 'project-foo']) throwsCode(() => validateSdkName(n), 'INVALID_NAME', 'reserved');
});

test('project ids', () => {
  assert.is(validateProjectId('1a2b3c4d'), '1a2b3c4d');
  for (const n of ['1A2B3C4D', '1a2b3c4', '1a2b3c4d5', 'ghijklmn']) throwsCode(() => validateProjectId(n), 'INVALID_NAME', n);
});

test('derived names', () => {
  assert.is(instanceName('nav2', '1a2b3c4d'), 'nav2-1a2b3c4d');
  assert.is(sdkLayerName('ros2', '0123456789abcdef'), 'ros2-0123456789abcdef');
  assert.is(stashName('nav2-1a2b3c4d'), 'stash-nav2-1a2b3c4d');
  assert.is(stashSdkName('ros2-0123456789abcdef'), 'stash-ros2-0123456789abcdef');
  throwsCode(() => instanceName('Nav2', '1a2b3c4d'), 'INVALID_NAME', 'Nav2');
  throwsCode(() => instanceName('nav2', 'xyz'), 'INVALID_NAME', 'xyz');
  throwsCode(() => sdkLayerName('ros2', 'short'), 'INVALID_NAME', 'short');
  throwsCode(() => sdkLayerName('agent', '0123456789abcdef'), 'INVALID_NAME', 'agent');
});

test('derived names: the longest valid inputs fit 63 characters exactly', () => {
  const ws = 'w'.repeat(40);
  const sdk = 's'.repeat(40);
  const inst = instanceName(ws, 'abcdef01');
  const layer = sdkLayerName(sdk, 'abcdef0123456789');
  assert.ok(stashName(inst).length <= 63);
  assert.is(stashSdkName(layer).length, 63);
  throwsCode(() => stashName('i'.repeat(58)), 'INVALID_NAME', '63');
  throwsCode(() => stashSdkName('l'.repeat(58)), 'INVALID_NAME', '63');
});

test('owner names: user name or numeric uid', () => {
  assert.is(ownerName({ username: 'alice', uid: 1000 }), 'alice');
  assert.is(ownerName({ username: 'a.b_c-d', uid: 1000 }), 'a.b_c-d');
  assert.is(ownerName({ username: 'Jo Doe', uid: 1001 }), '1001');
  assert.is(ownerName({ username: '1bad', uid: 0 }), '0');
  throwsCode(() => ownerName({ username: 'bad name', uid: -1 }), 'INVALID_NAME', 'bad name');
  assert.is(validateOwnerName('1001'), '1001');
  throwsCode(() => validateOwnerName('x y'), 'INVALID_NAME', 'x y');
});

test('didYouMean', () => {
  assert.is(didYouMean('ros3', ['nav2', 'ros2']), 'ros2');
  assert.is(didYouMean('nav', ['nav2', 'ros2']), 'nav2');
  assert.is(didYouMean('zzzzzz', ['nav2', 'ros2']), undefined);
  assert.is(didYouMean('x', []), undefined);
  assert.is(didYouMean('lunch', ['launch', 'list']), 'launch');
});

test.run();
