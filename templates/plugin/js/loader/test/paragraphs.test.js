// Tests of the loader's logic: `node --test` (no component needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunks, paragraphs } from '../src/paragraphs.js';
import { InvalidInput, catchErrors } from '../src/nova.js';

const utf8 = (s) => new TextEncoder().encode(s);

test('blank lines separate paragraphs', () => {
  const text = 'First line\nstill first.\n\nSecond.\n \n\n\r\nThird.\n';
  assert.deepEqual(paragraphs(text), ['First line\nstill first.', 'Second.', 'Third.']);
});

test('an empty document has no paragraphs', () => {
  assert.deepEqual(paragraphs(''), []);
  assert.deepEqual(paragraphs('\n\n  \n'), []);
});

test('chunks carry source and number', () => {
  const result = chunks('notes.txt', utf8('\uFEFFOne.\n\nTwo.'));
  assert.deepEqual(result.map((c) => c.text), ['One.', 'Two.']);
  assert.deepEqual(result[1].metadata, [['source', 'notes.txt'], ['paragraph', '2']]);
});

test('non-UTF-8 is invalid input', () => {
  const bytes = new Uint8Array([0x63, 0x61, 0x66, 0xe9]);
  assert.throws(() => chunks('notes.txt', bytes), new InvalidInput('notes.txt is not UTF-8 text'));
  assert.throws(() => catchErrors(chunks)('notes.txt', bytes), (e) => {
    assert.deepEqual(e.payload, { tag: 'invalid-input', val: 'notes.txt is not UTF-8 text' });
    return true;
  });
});
