// {{name}}: a nova document loader, built by `jco componentize` into a component.
//
// nova calls `documentLoader.load(source, bytes)` with a document's name and
// content (a Uint8Array) and expects a list of chunks back. This one splits
// UTF-8 text into paragraphs (separated by blank lines).
import { log } from 'nova:plugin/log@0.1.1';
import { chunks } from './paragraphs.js';
import { catchErrors } from './nova.js';

// The export `nova:plugin/document-loader`.
export const documentLoader = {
  describe() {
    return {
      name: '{{name}}',
      version: '0.1.0',
      extensions: ['txt', 'text'],
      mediaTypes: ['text/plain'],
    };
  },

  load: catchErrors((source, bytes) => {
    const result = chunks(source, bytes);
    log('info', `${source}: ${result.length} paragraphs`);
    return result;
  }),
};
