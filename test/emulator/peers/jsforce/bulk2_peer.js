// Runs the unmodified jsforce 3.10.16 client against the emulator and prints a JSON summary on stdout.
// Usage: node bulk2_peer.js <base-url> <default_org.json>
'use strict';
const fs = require('fs');
const jsforce = require('jsforce');

async function main() {
  const baseUrl = process.argv[2];
  const org = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: baseUrl, clientId: org.client_id, clientSecret: org.client_secret },
    loginUrl: baseUrl,
    version: '62.0',
  });
  // OAuth 2.0 username-password flow against /services/oauth2/token
  const userInfo = await conn.login(org.user.username, org.user.password);
  const out = { instanceUrl: conn.instanceUrl, userId: userInfo.id, orgId: userInfo.organizationId };

  // Bulk 2.0 ingest with mixed good and bad rows; jsforce streams the PUT (chunked) and fetches the three
  // result sets in parallel.
  const rows = ['External_Id__c,FirstName,LastName,Email,Birthdate'];
  for (let i = 0; i < 500; i++) {
    rows.push(`JS-${i},First${i},Last${i},user${i}@example.org,1990-01-${String((i % 28) + 1).padStart(2, '0')}`);
  }
  rows.push('JS-bad-1,No,,nolast@example.org,');          // REQUIRED_FIELD_MISSING
  rows.push('JS-bad-2,Bad,Email,not-an-email,');           // INVALID_EMAIL_ADDRESS
  rows.push('JS-bad-3,Bad,Date,ok@example.org,2001-02-30'); // bad date
  const input = rows.join('\n') + '\n';
  const res = await conn.bulk2.loadAndWaitForResults({
    object: 'Contact',
    operation: 'upsert',
    externalIdFieldName: 'External_Id__c',
    input,
    pollInterval: 100,
    pollTimeout: 60000,
  });
  out.ingest = {
    successful: res.successfulResults.length,
    failed: res.failedResults.length,
    unprocessed: res.unprocessedRecords.length,
    created: res.successfulResults.filter((r) => String(r.sf__Created) === 'true').length,
    errors: res.failedResults.map((r) => [r.External_Id__c, r.sf__Error]).sort(),
    sampleId: res.successfulResults[0] && res.successfulResults[0].sf__Id,
  };

  // Second run: upsert the same keys -> updates (sf__Created false)
  const res2 = await conn.bulk2.loadAndWaitForResults({
    object: 'Contact', operation: 'upsert', externalIdFieldName: 'External_Id__c',
    input: 'External_Id__c,Title\nJS-1,Engineer\nJS-2,Manager\n', pollInterval: 100, pollTimeout: 60000,
  });
  out.update = {
    successful: res2.successfulResults.length,
    created: res2.successfulResults.filter((r) => String(r.sf__Created) === 'true').length,
  };

  // Bulk 2.0 query (locator paging is done by jsforce)
  const stream = await conn.bulk2.query(
    "SELECT Id, External_Id__c, LastName, Title FROM Contact WHERE External_Id__c LIKE 'JS-%' ORDER BY LastName",
    { pollInterval: 100, pollTimeout: 60000 });
  const records = await stream.toArray();
  out.query = {
    count: records.length,
    titled: records.filter((r) => r.Title).map((r) => [r.External_Id__c, r.Title]).sort(),
    columns: records.length ? Object.keys(records[0]) : [],
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write('jsforce peer failed: ' + (e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
