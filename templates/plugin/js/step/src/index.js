// {{name}}: a nova workflow step, built by `jco componentize` into a component.
//
// nova calls `workflowStep.run(input, config)` with JSON text (the previous
// step's output, and this step's configuration) and expects JSON text back.
// Imports from nova are ES imports of the WIT interfaces.
import { log } from 'nova:plugin/log@0.1.1';
import { greet, parseObject } from './greet.js';
import { catchErrors } from './nova.js';

// The export `nova:plugin/workflow-step`.
export const workflowStep = {
  describe() {
    return {
      name: '{{name}}',
      version: '0.1.0',
      description: 'Greets input.name with config.greeting',
    };
  },

  run: catchErrors((input, config) => {
    const output = greet(parseObject(input, 'input'), parseObject(config, 'config'));
    log('info', output.message);
    return JSON.stringify(output);
  }),
};
