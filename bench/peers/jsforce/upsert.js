// jsforce peer of sf_bulk's benchmark: one Bulk API 2.0 upsert of a CSV file, the way a Node user would do it
// (bulk2.loadAndWaitForResults fed by a read stream; jsforce streams the PUT and fetches the three result
// sets in parallel). Prints one JSON line: counts and the wall time of the jsforce part in milliseconds.
// Usage: node upsert.js <base-url> <default_org.json> <csv-file> <object> <external-id-field>
'use strict';
const fs = require('fs');
const jsforce = require('jsforce');

async function main() {
  const [baseUrl, orgFile, csvFile, object, externalId] = process.argv.slice(2);
  const org = JSON.parse(fs.readFileSync(orgFile, 'utf8'));
  const started = process.hrtime.bigint();
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: baseUrl, clientId: org.client_id, clientSecret: org.client_secret },
    loginUrl: baseUrl,
    version: '62.0',
  });
  await conn.login(org.user.username, org.user.password);
  const res = await conn.bulk2.loadAndWaitForResults({
    object,
    operation: 'upsert',
    externalIdFieldName: externalId,
    input: fs.createReadStream(csvFile),
    pollInterval: Number(process.env.BENCH_POLL_MS || 1000),
    pollTimeout: 3600 * 1000,
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(JSON.stringify({
    ms,
    successful: res.successfulResults.length,
    failed: res.failedResults.length,
    unprocessed: res.unprocessedRecords.length,
    firstError: res.failedResults.length ? res.failedResults[0].sf__Error : null,
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write('jsforce peer failed: ' + (e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
