// jsforce peer of sf_bulk's query benchmark (bench section 6): one Bulk API 2.0 query job the way a Node user
// would run it, bulk2.query, with the result written to stdout as one CSV file for `psql \copy ... FROM STDIN`.
// Usage: node query.js <base-url> <default_org.json> <soql>
// The CSV is jsforce's own CSV stream (RecordStream.stream('csv')): the pages' bytes as Salesforce sent them.
// jsforce concatenates the pages with the header line Salesforce puts on each, so every header after the
// first is dropped on the way out (COPY would read them as rows). It is read without back-pressure (see
// main). jsforce's parsed records are not used: on a multi-page result they include every later page's
// header as a record ({Id: 'Id', ...}), and re-serialising them costs more than the raw bytes.
// Prints one JSON line on stderr at the end: rows written, jsforce's wall time, peak RSS (kB).
'use strict';
const fs = require('fs');
const jsforce = require('jsforce');
const { dropRepeatedHeaders } = require('./csv_rows');

async function main() {
  const [baseUrl, orgFile, soql] = process.argv.slice(2);
  const org = JSON.parse(fs.readFileSync(orgFile, 'utf8'));
  const started = process.hrtime.bigint();
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: baseUrl, clientId: org.client_id, clientSecret: org.client_secret },
    loginUrl: baseUrl,
    version: '62.0',
  });
  await conn.login(org.user.username, org.user.password);
  const records = await conn.bulk2.query(soql, {
    pollInterval: Number(process.env.BENCH_POLL_MS || 1000),
    pollTimeout: 3600 * 1000,
  });
  // jsforce 3.10.16 pipes every page's response into one stream (bulk2.js, QueryJobV2.result); when that stream
  // is read slower than the pages arrive (psql behind a pipe), pages interleave or are cut short (seen here:
  // 2,913 of 3,004 lines, or rows spliced mid-line). It holds the whole result in memory by the time query()
  // resolves anyway, so the stream is drained at once and fed on to psql from memory.
  const filter = dropRepeatedHeaders();
  await new Promise((resolve, reject) => {
    const chunks = [];
    const raw = records.stream('csv');
    raw.on('data', (c) => chunks.push(c));
    raw.on('error', reject);
    raw.on('end', () => {
      for (const c of chunks.splice(0)) filter.write(c);
      filter.end();
    });
    filter.on('error', reject);
    process.stdout.on('error', reject);
    filter.pipe(process.stdout);
    filter.on('end', resolve);
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stderr.write(JSON.stringify({ ms, rows: filter.rows(), maxRssKb: process.resourceUsage().maxRSS }) + '\n');
}

main().catch((e) => {
  process.stderr.write('jsforce peer failed: ' + (e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
