// jsforce peer of sf_bulk's foreign-table benchmark (bench section 7): the same SOQL a foreign-table scan sent,
// read the way a Node user would, into Node's memory, and counted.
// Usage: node read.js <base-url> <default_org.json> bulk2|rest <soql>
//   bulk2: conn.bulk2.query (one Bulk API 2.0 query job; jsforce fetches every result page before the promise
//          resolves), then its CSV stream drained and its rows counted with the repeated page headers dropped
//          (csv_rows.js; the parsed records are not used, see query.js).
//   rest:  conn.query(soql, { autoFetch: true }) (GET /query, then every nextRecordsUrl), its records counted.
// Prints one JSON line on stdout: rows, ms (from after login to the last row counted: the session is warm, as
// the foreign table's is), login_ms, fetched_ms (bulk2: until query() resolved), pages (rest), peak RSS (kB).
'use strict';
const fs = require('fs');
const jsforce = require('jsforce');
const { dropRepeatedHeaders } = require('./csv_rows');

async function main() {
  const [baseUrl, orgFile, mode, soql] = process.argv.slice(2);
  const org = JSON.parse(fs.readFileSync(orgFile, 'utf8'));
  const t0 = process.hrtime.bigint();
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: baseUrl, clientId: org.client_id, clientSecret: org.client_secret },
    loginUrl: baseUrl,
    version: '62.0',
  });
  await conn.login(org.user.username, org.user.password);
  const started = process.hrtime.bigint();
  let rows = 0;
  let pages = null;
  let fetched = null;  // bulk2: when query() resolved (every page fetched), before the rows are counted
  if (mode === 'bulk2') {
    const records = await conn.bulk2.query(soql, {
      pollInterval: Number(process.env.BENCH_POLL_MS || 1000),
      pollTimeout: 3600 * 1000,
    });
    fetched = process.hrtime.bigint();
    // Drained at once (the whole result is in memory when query() resolves; see query.js for why).
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
      filter.on('data', () => {});
      filter.on('end', resolve);
    });
    rows = filter.rows();
  } else if (mode === 'rest') {
    pages = 0;
    const query = conn.query(soql, { autoFetch: true, maxFetch: 1e9 });
    query.on('fetch', () => { pages++; });
    const res = await query;
    rows = res.records.length;
  } else {
    throw new Error('mode is bulk2 or rest, not ' + mode);
  }
  const done = process.hrtime.bigint();
  process.stdout.write(JSON.stringify({
    rows,
    ms: Number(done - started) / 1e6,
    login_ms: Number(started - t0) / 1e6,
    fetched_ms: fetched === null ? null : Number(fetched - started) / 1e6,
    pages,
    maxRssKb: process.resourceUsage().maxRSS,
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write('jsforce peer failed: ' + (e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
