// A step written in JavaScript and built with `jco componentize`'s default
// flags, as a new author would: the component imports wasi:http (and the
// rest of WASI 0.2) whether it uses it or not.
import { log } from 'nova:plugin/log@0.1.1';

export const workflowStep = {
  describe() {
    return { name: 'js-step', version: '1.0.0', description: 'Doubles input.n (JavaScript)' };
  },
  run(input, _config) {
    const value = JSON.parse(input);
    log('info', `js-step doubling ${value.n}`);
    return JSON.stringify({ n: value.n * 2, lang: 'javascript' });
  },
};
