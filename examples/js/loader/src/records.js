// json-lines' logic: plain functions, tested by `node --test` without a component.
import { InvalidInput } from './nova.js';

/** Fields whose string value is taken as a record's text, in this order. */
export const TEXT_FIELDS = ['text', 'content', 'body'];

/** The document as text; a UTF-8 byte order mark is dropped. */
export function decode(source, bytes) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidInput(`${source} is not UTF-8 text`);
  }
}

/** One record's chunk: its text, and its other scalar fields as metadata. */
export function recordChunk(source, line, record) {
  const metadata = [
    ['source', source],
    ['line', String(line)],
  ];
  if (typeof record === 'string') return { text: record, metadata };
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    return { text: JSON.stringify(record), metadata };
  }
  const textField = TEXT_FIELDS.find((f) => typeof record[f] === 'string');
  for (const [key, value] of Object.entries(record)) {
    if (key === textField || key === 'source' || key === 'line') continue;
    if (['string', 'number', 'boolean'].includes(typeof value)) metadata.push([key, String(value)]);
  }
  return { text: textField ? record[textField] : JSON.stringify(record), metadata };
}

/** One chunk per non-blank line; a line that is not JSON is invalid input. */
export function chunks(source, bytes) {
  const lines = decode(source, bytes).split('\n');
  const result = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let record;
    try {
      record = JSON.parse(line);
    } catch (e) {
      throw new InvalidInput(`${source}: line ${i + 1} is not JSON: ${e.message}`);
    }
    const chunk = recordChunk(source, i + 1, record);
    if (chunk.text.trim() !== '') result.push(chunk);
  });
  return result;
}
