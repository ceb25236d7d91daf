// Tests of json-lines' logic: `node --test` (no component needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunks, recordChunk } from '../src/records.js';
import { InvalidInput } from '../src/nova.js';

const utf8 = (s) => new TextEncoder().encode(s);

test('one chunk per record, fields as metadata', () => {
  const doc = '{"id": 1, "title": "Intro", "text": "Hello.", "tags": ["a"]}\n\n{"content": "Second", "draft": true}\r\n';
  assert.deepEqual(chunks('notes.jsonl', utf8(doc)), [
    { text: 'Hello.', metadata: [['source', 'notes.jsonl'], ['line', '1'], ['id', '1'], ['title', 'Intro']] },
    { text: 'Second', metadata: [['source', 'notes.jsonl'], ['line', '3'], ['draft', 'true']] },
  ]);
});

test('records without a text field', () => {
  assert.equal(recordChunk('s', 1, { n: 2 }).text, '{"n":2}');
  assert.equal(recordChunk('s', 1, 'just text').text, 'just text');
  assert.equal(recordChunk('s', 1, [1, 2]).text, '[1,2]');
  assert.deepEqual(recordChunk('s', 4, { text: 'x', source: 'other', line: 9 }).metadata, [['source', 's'], ['line', '4']]);
});

test('empty texts are skipped', () => {
  assert.deepEqual(chunks('s', utf8('{"text": "  "}\n"ok"\n')).map((c) => c.text), ['ok']);
});

test('bad lines are invalid input', () => {
  assert.throws(() => chunks('d.jsonl', utf8('{"text": "a"}\n{oops}\n')), (e) => {
    assert.ok(e instanceof InvalidInput);
    assert.match(e.message, /^d\.jsonl: line 2 is not JSON: /);
    return true;
  });
  assert.throws(() => chunks('d.jsonl', new Uint8Array([0x22, 0xff, 0x22])), new InvalidInput('d.jsonl is not UTF-8 text'));
});
