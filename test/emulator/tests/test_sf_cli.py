"""Optional peer test: the Salesforce CLI (`sf`), about 300 MB, so not installed by run_tests.

Runs only when SF_CLI_BIN points at an `sf` executable, e.g. after
  mkdir /tmp/sfcli && cd /tmp/sfcli && echo '{"dependencies":{"@salesforce/cli":"2.146"},
    "overrides":{"@jsforce/jsforce-node":{"undici":"^7.16.0"}}}' > package.json && npm install
  SF_CLI_BIN=/tmp/sfcli/node_modules/.bin/sf test/emulator/run_tests sf_cli
"""

import csv
import os
import subprocess
import tempfile
import unittest

from emu import ORG, EmuTestCase

SF = os.environ.get("SF_CLI_BIN")


@unittest.skipUnless(SF and os.path.exists(SF), "SF_CLI_BIN not set (Salesforce CLI peer test is opt-in)")
class SalesforceCli(EmuTestCase):
    emu_args = ("--processing-delay-ms", "300")

    def sf(self, *args, cwd):
        env = dict(os.environ, HOME=self.home, SF_DISABLE_TELEMETRY="true", SF_AUTOUPDATE_DISABLE="true",
                   SF_SKIP_NEW_VERSION_CHECK="true", SF_ACCESS_TOKEN=ORG["access_token"])
        return subprocess.run([SF] + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)

    def test_login_upsert_bulk_results_export(self):
        self.home = tempfile.mkdtemp(prefix="sfhome-")
        work = tempfile.mkdtemp(prefix="sfwork-")
        p = self.sf("org", "login", "access-token", "--instance-url", self.emu.url, "--no-prompt", "--alias", "local",
                    cwd=work)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(work, "leads.csv"), "w") as fh:
            fh.write("External_Id__c,LastName,Company,Email\nCLI-1,Okafor,Acme,ada@example.org\n"
                     "CLI-2,,Acme,x@example.org\nCLI-3,Tanaka,Acme,not-an-email\n")
        self.sf("data", "upsert", "bulk", "--sobject", "Lead", "--file", "leads.csv", "--external-id",
                "External_Id__c", "--wait", "2", "--target-org", "local", cwd=work)
        jobs = self.admin("GET", "/jobs")["jobs"]
        self.assertEqual(len(jobs), 1)
        self.assertEqual((jobs[0]["state"], jobs[0]["numberRecordsProcessed"], jobs[0]["numberRecordsFailed"]),
                         ("JobComplete", 3, 2))
        p = self.sf("data", "bulk", "results", "--job-id", jobs[0]["id"], "--target-org", "local", cwd=work)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(work, "%s-failed-records.csv" % jobs[0]["id"])) as fh:
            failed = {r["External_Id__c"]: r["sf__Error"] for r in csv.DictReader(fh)}
        self.assertEqual(failed["CLI-2"], "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --")
        p = self.sf("data", "export", "bulk", "--query", "SELECT Id, LastName FROM Lead", "--output-file", "out.csv",
                    "--wait", "2", "--target-org", "local", cwd=work)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(work, "out.csv")) as fh:
            self.assertEqual([r["LastName"] for r in csv.DictReader(fh)], ["Okafor"])
        self.assertEqual(len([e for e in self.requests_log() if e["method"] == "PUT"]), 1)
