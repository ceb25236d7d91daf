// Helpers for a nova plugin written in JavaScript (vendored by `nova plugin new`).
//
// componentize-js turns what an export throws into the `err` of its WIT
// `result`: the thrown value's own `payload` property if it has one, else
// the value itself, except that an Error without `payload` traps the
// instance. `catchErrors` makes every throw a `plugin-error`, so a bug is
// reported as `failed`, never as a trap.

/** Throw it for input that can never work: nova answers `invalid-input`
 * (422 plugin_invalid_input) and a workflow does not retry the step. */
export class InvalidInput extends Error {
  constructor(message) {
    super(message);
    this.name = 'InvalidInput';
  }
}

/** Throw it for well-formed input this plugin does not handle: nova answers
 * `unsupported` (422 plugin_unsupported), never retried. */
export class Unsupported extends Error {
  constructor(message) {
    super(message);
    this.name = 'Unsupported';
  }
}

/** What `catchErrors` throws: `payload` is the plugin-error, `{ tag, val }`. */
export class PluginError extends Error {
  constructor(payload) {
    super(`${payload.tag}: ${payload.val}`);
    this.name = 'PluginError';
    this.payload = payload;
  }
}

const CASES = new Set(['invalid-input', 'unsupported', 'failed']);

function describe(value) {
  if (value !== null && typeof value === 'object' && 'tag' in value) {
    return value.val === undefined ? String(value.tag) : `${value.tag}: ${value.val}`;
  }
  return String(value);
}

/** The plugin-error (`{ tag, val }`) nova gets for a thrown value. */
export function pluginError(e) {
  if (e instanceof InvalidInput) return { tag: 'invalid-input', val: e.message };
  if (e instanceof Unsupported) return { tag: 'unsupported', val: e.message };
  if (e !== null && typeof e === 'object' && 'payload' in e) {
    const p = e.payload;
    if (p !== null && typeof p === 'object' && CASES.has(p.tag) && typeof p.val === 'string') {
      return { tag: p.tag, val: p.val };
    }
    // An import's error let through: kv and knowledge fail with a string,
    // store with a store-error ({ tag: 'conflict' | 'invalid' | 'unavailable', val }).
    return { tag: 'failed', val: `ComponentError: ${describe(p)}` };
  }
  if (e instanceof Error) return { tag: 'failed', val: e.message ? `${e.name}: ${e.message}` : e.name };
  return { tag: 'failed', val: describe(e) };
}

/** Wrap `run` or `load`: whatever it throws (or its promise rejects with)
 * becomes a plugin-error: InvalidInput -> invalid-input, Unsupported ->
 * unsupported, anything else -> failed "<ErrorName>: <message>". */
export function catchErrors(fn) {
  return function (...args) {
    try {
      const result = fn.apply(this, args);
      if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
        return result.then(undefined, (e) => {
          throw new PluginError(pluginError(e));
        });
      }
      return result;
    } catch (e) {
      throw new PluginError(pluginError(e));
    }
  };
}
