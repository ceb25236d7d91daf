// The loader's logic: plain functions, tested by `node --test` without a component.
import { InvalidInput } from './nova.js';

/** The document as text; a UTF-8 byte order mark is dropped. */
export function decode(source, bytes) {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new InvalidInput(`${source} is not UTF-8 text`);
  }
}

/** The paragraphs of `text` (separated by blank lines), trimmed, without empty ones. */
export function paragraphs(text) {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t\f\v]*(?:\n[ \t\f\v]*)+/)
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

/** One chunk per paragraph, with its source and number (from 1). */
export function chunks(source, bytes) {
  return paragraphs(decode(source, bytes)).map((text, i) => ({
    text,
    metadata: [
      ['source', source],
      ['paragraph', String(i + 1)],
    ],
  }));
}
