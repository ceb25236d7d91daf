// Tests of slugify's logic: `node --test` (no component needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseObject, readConfig, run, slugify } from '../src/slug.js';
import { InvalidInput } from '../src/nova.js';

test('folds accents and joins words', () => {
  assert.equal(slugify('Héllo, Wörld!'), 'hello-world');
  assert.equal(slugify('  Straße & Œuvre — 2024  '), 'strasse-oeuvre-2024');
  assert.equal(slugify('e\u0301te\u0301'), 'ete');
});

test('keeps other letters, and case when asked', () => {
  assert.equal(slugify('Привет мир'), 'привет-мир');
  assert.equal(slugify('Hello Élan', { lowercase: false, separator: '_' }), 'Hello_Elan');
});

test('cuts at a word boundary', () => {
  assert.equal(slugify('one two three', { maxLength: 9 }), 'one-two');
  assert.equal(slugify('abcdefghij', { maxLength: 4 }), 'abcd');
  assert.equal(slugify('!!!'), '');
});

test('config defaults and checks', () => {
  assert.deepEqual(readConfig({}), { field: 'text', separator: '-', maxLength: 80, lowercase: true });
  assert.throws(() => readConfig({ max_length: 0 }), /config\.max_length must be a positive integer/);
  assert.throws(() => readConfig({ separator: 1 }), InvalidInput);
});

test('run adds the slug to the input', () => {
  assert.deepEqual(run({ text: 'A B', id: 7 }, {}), { text: 'A B', id: 7, slug: 'a-b' });
  assert.deepEqual(run({ title: 'A B' }, { field: 'title' }), { title: 'A B', slug: 'a-b' });
  assert.throws(() => run({ text: 1 }, {}), new InvalidInput('input.text must be a string'));
  assert.throws(() => parseObject('"x"', 'input'), new InvalidInput('input must be a JSON object'));
});
