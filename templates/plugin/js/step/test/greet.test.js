// Tests of the step's logic: `node --test` (no component needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { greet, parseObject } from '../src/greet.js';
import { InvalidInput, catchErrors, pluginError } from '../src/nova.js';

test('greets with config', () => {
  assert.deepEqual(greet({ name: 'Ada' }, { greeting: 'Hi' }), { message: 'Hi, Ada!' });
});

test('defaults', () => {
  assert.deepEqual(greet({}, {}), { message: 'Hello, world!' });
});

test('input.name must be a string', () => {
  assert.throws(() => greet({ name: 42 }, {}), new InvalidInput('input.name must be a string'));
});

test('input must be a JSON object', () => {
  assert.throws(() => parseObject('[1, 2]', 'input'), /input must be a JSON object/);
  assert.throws(() => parseObject('{', 'input'), /input is not JSON/);
});

test('errors become plugin-errors', () => {
  const run = catchErrors((input) => greet(parseObject(input, 'input'), {}));
  assert.throws(() => run('{"name": 1}'), (e) => {
    assert.deepEqual(e.payload, { tag: 'invalid-input', val: 'input.name must be a string' });
    return true;
  });
  assert.deepEqual(pluginError(new TypeError('x is undefined')), { tag: 'failed', val: 'TypeError: x is undefined' });
});
