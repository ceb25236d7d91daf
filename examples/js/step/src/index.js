// slugify: a nova workflow step that adds a URL slug of one field of its input.
//
// Input {"text": "Héllo, Wörld!"}, config {"separator": "_", "max_length": 40,
// "lowercase": true, "field": "text"} (all optional) -> the input with
// "slug": "hello_world" added.
import { log } from 'nova:plugin/log@0.1.1';
import { catchErrors } from './nova.js';
import { parseObject, run } from './slug.js';

export const workflowStep = {
  describe() {
    return {
      name: 'slugify',
      version: '0.1.0',
      description: 'Adds a URL slug of input.text (config: field, separator, max_length, lowercase)',
    };
  },

  run: catchErrors((input, config) => {
    const output = run(parseObject(input, 'input'), parseObject(config, 'config'));
    log('info', `slug of ${output.slug.length} characters`);
    return JSON.stringify(output);
  }),
};
