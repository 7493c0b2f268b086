// The repeated-page-header filter of the jsforce peers (bench sections 6 and 7): jsforce's bulk2.query CSV
// stream is every result page's bytes one after the other, each page with Salesforce's header line.
'use strict';
const { Transform } = require('stream');

// Drops the repeated page headers from the concatenated CSV. A line counts only where a record starts (an
// even number of quotes so far): a quoted value may hold a newline followed by the header's text.
function dropRepeatedHeaders() {
  let header = null;  // the first line, with its line ending
  let pending = '';   // an incomplete line kept for the next chunk
  let quotesEven = true;
  let rows = 0;
  const t = new Transform({
    transform(chunk, enc, done) {
      const text = pending + chunk.toString('utf8');
      let start = 0;
      const out = [];
      for (;;) {
        const nl = text.indexOf('\n', start);
        if (nl < 0) break;
        const line = text.slice(start, nl + 1);
        const atRecordStart = quotesEven;
        let q = 0;
        for (let i = line.indexOf('"'); i >= 0; i = line.indexOf('"', i + 1)) q++;
        if (q % 2) quotesEven = !quotesEven;
        if (header === null) {
          header = line;
          out.push(line);
        } else if (!(atRecordStart && line === header)) {
          out.push(line);
          if (quotesEven) rows++;
        }
        start = nl + 1;
      }
      pending = text.slice(start);
      done(null, out.join(''));
    },
    flush(done) {
      if (pending && pending !== header) rows++;
      done(null, pending === header ? '' : pending);
    },
  });
  t.rows = () => rows;
  return t;
}

module.exports = { dropRepeatedHeaders };
