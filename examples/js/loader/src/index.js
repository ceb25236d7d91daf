// json-lines: a nova document loader that makes one chunk per JSON Lines record.
//
// A record's text is its first string field among `text`, `content` and
// `body` (the whole record as JSON when it has none, the string itself when
// the record is a string); its other string, number and boolean fields become
// metadata, beside `source` and `line` (from 1). Blank lines are skipped; a
// line that is not JSON is `invalid-input`.
import { log } from 'nova:plugin/log@0.1.1';
import { catchErrors } from './nova.js';
import { chunks } from './records.js';

export const documentLoader = {
  describe() {
    return {
      name: 'json-lines',
      version: '0.1.0',
      extensions: ['jsonl', 'ndjson'],
      mediaTypes: ['application/jsonl', 'application/x-ndjson'],
    };
  },

  load: catchErrors((source, bytes) => {
    const result = chunks(source, bytes);
    log('info', `${source}: ${result.length} records`);
    return result;
  }),
};
