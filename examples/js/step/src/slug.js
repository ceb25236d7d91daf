// slugify's logic: plain functions, tested by `node --test` without a component.
import { InvalidInput } from './nova.js';

// The component's JavaScript engine has no Intl and no String.prototype.normalize,
// so accented Latin letters are folded with this table; other letters are kept.
const FOLD = {};
for (const [letters, ascii] of [
  ['àáâãäåāăą', 'a'], ['çćĉċč', 'c'], ['ďđ', 'd'], ['èéêëēĕėęě', 'e'], ['ĝğġģ', 'g'],
  ['ĥħ', 'h'], ['ìíîïĩīĭįı', 'i'], ['ĵ', 'j'], ['ķ', 'k'], ['ĺļľŀł', 'l'], ['ñńņňŉ', 'n'],
  ['òóôõöøōŏő', 'o'], ['ŕŗř', 'r'], ['śŝşšș', 's'], ['ţťŧț', 't'], ['ùúûüũūŭůűų', 'u'],
  ['ŵ', 'w'], ['ýÿŷ', 'y'], ['źżž', 'z'], ['æ', 'ae'], ['œ', 'oe'], ['ß', 'ss'], ['þ', 'th'], ['ð', 'd'],
]) {
  for (const letter of letters) {
    FOLD[letter] = ascii;
    const upper = letter.toUpperCase();
    if (upper.length === 1 && upper !== letter) FOLD[upper] = ascii.toUpperCase();
  }
}

/** Parse JSON text that must be an object; `what` names it in errors. */
export function parseObject(text, what) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InvalidInput(`${what} is not JSON: ${e.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidInput(`${what} must be a JSON object`);
  }
  return value;
}

/** The step's configuration, with defaults: which input field to read, the
 * separator, the longest slug, and whether to lowercase. */
export function readConfig(config) {
  const { field = 'text', separator = '-', max_length = 80, lowercase = true } = config;
  if (typeof field !== 'string') throw new InvalidInput('config.field must be a string');
  if (typeof separator !== 'string' || separator.length > 8) {
    throw new InvalidInput('config.separator must be a string of at most 8 characters');
  }
  if (!Number.isInteger(max_length) || max_length < 1) {
    throw new InvalidInput('config.max_length must be a positive integer');
  }
  if (typeof lowercase !== 'boolean') throw new InvalidInput('config.lowercase must be true or false');
  return { field, separator, maxLength: max_length, lowercase };
}

/** "Héllo, Wörld!" -> "hello-world": letters and digits, accents folded,
 * everything else one separator, cut at a word boundary when possible. */
export function slugify(text, { separator = '-', maxLength = 80, lowercase = true } = {}) {
  let s = lowercase ? text.toLowerCase() : text;
  s = Array.from(s.replace(/\p{M}/gu, ''), (c) => FOLD[c] ?? c).join('');
  const words = s.split(/[^\p{L}\p{N}]+/u).filter((w) => w !== '');
  let slug = '';
  for (const word of words) {
    const next = slug === '' ? word : slug + separator + word;
    if (Array.from(next).length > maxLength) {
      // A first word longer than the limit is cut; later ones are dropped.
      if (slug === '') slug = Array.from(word).slice(0, maxLength).join('');
      break;
    }
    slug = next;
  }
  return slug;
}

/** The step: the input object with `slug` added. */
export function run(input, config) {
  const { field, ...options } = readConfig(config);
  const text = input[field];
  if (typeof text !== 'string') throw new InvalidInput(`input.${field} must be a string`);
  return { ...input, slug: slugify(text, options) };
}
