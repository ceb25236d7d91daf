// javascript: nova's code step. Runs the JavaScript snippet in config.code on
// the step's input, in the plugin sandbox.
//
// - The input (any JSON value) is the variable `input`. Without config.code,
//   the input must be {"code": "...", "input": ...} (code an earlier step
//   made), and `input` is its `input`.
// - The result is what the code assigns to `result`, or what it `return`s at
//   its top level, or else what its `main(input)` returns (awaited when it is
//   a promise); it must be JSON. A snippet that uses `await` runs as an async
//   function.
// - console.log/info/debug write to stdout, console.warn/error to stderr;
//   each stream keeps config.capture_bytes (64 KiB by default), the rest is
//   counted, not kept.
// - Output: {"result": ..., "stdout": "...", "stderr": "..."}.
// - A syntax error, or a result that is not JSON, is `invalid-input`; an
//   exception the code throws is `failed`; each says the error's name, its
//   message and the line of the snippet. With config.on_error = "return"
//   (what POST /sandbox/run asks for) the error is returned in the output as
//   "error": {"type", "message", "line"}, with what was printed before it.
//
// Time and memory are bounded by the host (config.timeout_ms and
// config.memory_mb lower the plugin's limits for one call).

const VERSION = '0.1.0';
const DEFAULT_CAPTURE = 64 << 10;
const MAX_CAPTURE = 1 << 20;
// What the snippet's source is preceded by in the function `new Function`
// builds ("function anonymous(input,console\n) {\n"): its lines are the
// snippet's line numbers plus this.
const HEADER_LINES = 2;
const DONE = Symbol('done');
const AsyncFunction = (async () => {}).constructor;
const encoder = new TextEncoder();
// Bound now: a snippet that replaces JSON.stringify (or JSON.parse)
// changes its own globals, not what the step answers with.
const stringify = JSON.stringify;
const parse = JSON.parse;

class Refused extends Error {}

/** What componentize-js turns into the `err` of `run`'s result. */
class PluginError extends Error {
  constructor(tag, message) {
    super(message);
    this.payload = { tag, val: message };
  }
}

class Capture {
  constructor(limit) {
    this.limit = limit;
    this.parts = [];
    this.kept = 0;
    this.dropped = 0;
  }

  write(text) {
    const bytes = encoder.encode(text);
    const room = this.limit - this.kept;
    if (bytes.length <= room) {
      this.parts.push(text);
      this.kept += bytes.length;
      return;
    }
    // The first `room` bytes, cut back to a whole character.
    let end = room;
    while (end > 0 && (bytes[end] & 0xc0) === 0x80) end -= 1;
    this.parts.push(new TextDecoder().decode(bytes.subarray(0, end)));
    this.kept += end;
    this.dropped += bytes.length - end;
  }

  text() {
    const out = this.parts.join('');
    if (this.dropped === 0) return out;
    return `${out}\n[${this.dropped} more bytes not captured: the limit is ${this.limit}]\n`;
  }
}

/** One console argument as console.log shows it. */
function show(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.stack ? `${value}\n${value.stack}` : String(value);
  if (typeof value === 'object' && value !== null) {
    try {
      return stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

function consoleOf(stdout, stderr) {
  const to = (stream) => (...args) => stream.write(`${args.map(show).join(' ')}\n`);
  return {
    log: to(stdout),
    info: to(stdout),
    debug: to(stdout),
    trace: to(stderr),
    warn: to(stderr),
    error: to(stderr),
  };
}

/** The snippet's line an error was raised at, from its stack. */
function snippetLine(error) {
  if (error instanceof SyntaxError && typeof error.lineNumber === 'number') {
    return error.lineNumber > HEADER_LINES ? error.lineNumber - HEADER_LINES : null;
  }
  const stack = error !== null && typeof error === 'object' ? error.stack : undefined;
  if (typeof stack !== 'string') return null;
  for (const frame of stack.split('\n')) {
    const m = / > (?:Async)?Function:(\d+):\d+$/.exec(frame);
    if (m) {
      const line = Number(m[1]) - HEADER_LINES;
      return line > 0 ? line : null;
    }
  }
  return null;
}

function describeError(error) {
  if (error instanceof Error) {
    return { type: error.name || 'Error', message: error.message, line: snippetLine(error) };
  }
  let message;
  try {
    message = typeof error === 'string' ? error : stringify(error);
  } catch {
    message = String(error);
  }
  return { type: 'Uncaught', message: String(message), line: null };
}

function errorText(error) {
  let text = error.type;
  if (error.message) text += `: ${error.message}`;
  if (error.line !== null) text += ` (line ${error.line})`;
  return text;
}

function readConfig(text) {
  let config;
  try {
    config = text.trim() === '' ? {} : parse(text);
  } catch (e) {
    throw new Refused(`config is not JSON: ${e.message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new Refused('config must be a JSON object');
  }
  if (config.code !== undefined && typeof config.code !== 'string') {
    throw new Refused('config.code must be the JavaScript source to run, as a string');
  }
  const capture = config.capture_bytes ?? DEFAULT_CAPTURE;
  if (!Number.isInteger(capture) || capture < 0 || capture > MAX_CAPTURE) {
    throw new Refused(`config.capture_bytes must be an integer from 0 to ${MAX_CAPTURE}`);
  }
  const onError = config.on_error ?? 'fail';
  if (onError !== 'fail' && onError !== 'return') {
    throw new Refused('config.on_error must be "fail" or "return"');
  }
  return { code: config.code, capture, onError };
}

// What the snippet is followed by: its `result` or `main`, marked as ours
// so a top-level `return` of the snippet's own is told apart.
const TRAILER =
  '\n;return { [DONE]: true, result: typeof result === "undefined" ? undefined : result, ' +
  'main: typeof main === "function" ? main : undefined };';

/** The snippet as a function of (input, console, DONE). */
function compile(code) {
  const Make = /\bawait\b/.test(code) ? AsyncFunction : Function;
  return new Make('input', 'console', 'DONE', code + TRAILER);
}

function resultOf(value, input) {
  if (value === null || typeof value !== 'object' || value[DONE] !== true) return value;
  if (value.result !== undefined) return value.result;
  if (value.main !== undefined) return value.main(input);
  return undefined;
}

function finish(settings, stdout, stderr, result, failure) {
  let resultText = 'null';
  if (failure === null) {
    try {
      resultText = stringify(result === undefined ? null : result) ?? 'null';
    } catch (e) {
      failure = ['invalid-input', { type: 'ResultError', message: `result is not JSON: ${e.message}`, line: null }];
    }
  }
  const out = { result: null, stdout: stdout.text(), stderr: stderr.text() };
  if (failure !== null) {
    const [tag, error] = failure;
    if (settings.onError === 'fail') throw new PluginError(tag, errorText(error));
    out.error = error;
  }
  // The result as its own JSON text, spliced in (not parsed again).
  const rest = stringify(out).slice('{"result":null'.length);
  return `{"result":${resultText}${rest}`;
}

function run(input, config) {
  let settings;
  let data;
  try {
    settings = readConfig(config);
    try {
      data = input.trim() === '' ? null : parse(input);
    } catch (e) {
      throw new Refused(`input is not JSON: ${e.message}`);
    }
    if (settings.code === undefined) {
      // Code made by an earlier step: {"code": "...", "input": ...}.
      if (data === null || typeof data !== 'object' || typeof data.code !== 'string') {
        throw new Refused('no code: give config.code, or an input {"code": "...", "input": ...}');
      }
      settings.code = data.code;
      data = data.input ?? null;
    }
  } catch (e) {
    throw new PluginError('invalid-input', e.message);
  }
  const stdout = new Capture(settings.capture);
  const stderr = new Capture(settings.capture);
  const fail = (tag) => (e) => finish(settings, stdout, stderr, undefined, [tag, describeError(e)]);
  let fn;
  try {
    fn = compile(settings.code);
  } catch (e) {
    return fail('invalid-input')(e);
  }
  const console = consoleOf(stdout, stderr);
  globalThis.console = console;
  let value;
  try {
    value = resultOf(fn(data, console, DONE), data);
  } catch (e) {
    return fail('failed')(e);
  }
  if (value !== null && typeof value === 'object' && typeof value.then === 'function') {
    return Promise.resolve(value)
      .then((v) => resultOf(v, data))
      .then(
        (result) => finish(settings, stdout, stderr, result, null),
        fail('failed'),
      );
  }
  return finish(settings, stdout, stderr, value, null);
}

export const workflowStep = {
  describe() {
    return {
      name: 'javascript',
      version: VERSION,
      description: 'Runs the JavaScript snippet in config.code on the input; returns its result and what it logged',
    };
  },
  run,
};
