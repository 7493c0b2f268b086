"""Peer test: the unmodified jsforce 3.10.16 client (bulk2 ingest with good and bad rows, bulk2 query)."""

import json
import os
import shutil
import subprocess
import unittest

from emu import EMU_DIR, EmuTestCase

PEER = os.path.join(EMU_DIR, "peers", "jsforce")


def ensure_jsforce():
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise unittest.SkipTest("node/npm not installed")
    if not os.path.isdir(os.path.join(PEER, "node_modules", "jsforce")):
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER,
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise AssertionError("npm ci failed in %s:\n%s%s" % (PEER, p.stdout, p.stderr))


class JsforcePeer(EmuTestCase):
    def test_jsforce_bulk2_ingest_and_query(self):
        ensure_jsforce()
        # jsforce 3.10.16 cannot follow Sforce-Locator across pages (its result() pipes every page into one
        # stream that the first page already ended: ERR_STREAM_WRITE_AFTER_END), so results stay on one page here.
        self.config(processing_delay_ms=150, batch_size=200, batch_delay_ms=50)
        p = subprocess.run(["node", "bulk2_peer.js", self.emu.url, os.path.join(EMU_DIR, "default_org.json")],
                           cwd=PEER, capture_output=True, text=True, timeout=180)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(out["instanceUrl"], self.emu.url)
        ing = out["ingest"]
        self.assertEqual((ing["successful"], ing["failed"], ing["unprocessed"], ing["created"]), (500, 3, 0, 500))
        self.assertEqual(ing["errors"], [
            ["JS-bad-1", "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"],
            ["JS-bad-2", "INVALID_EMAIL_ADDRESS:Email: invalid email address: not-an-email:Email --"],
            ["JS-bad-3", "INVALID_FIELD:Failed to deserialize field at col 4. Due to, '2001-02-30' is not a valid "
                         "value for the type xsd:date:Birthdate --"]])
        self.assertRegex(ing["sampleId"], r"^003[0-9A-Za-z]{15}$")
        self.assertEqual(out["update"], {"successful": 2, "created": 0})
        self.assertEqual(out["query"]["count"], 500)
        self.assertEqual(out["query"]["titled"], [["JS-1", "Engineer"], ["JS-2", "Manager"]])
        self.assertEqual(out["query"]["columns"], ["Id", "External_Id__c", "LastName", "Title"])
        # the store really holds what jsforce sent
        recs = [r for r in self.records("Contact") if r.get("External_Id__c", "").startswith("JS-")]
        self.assertEqual(len(recs), 500)
        log = self.requests_log()
        puts = [e for e in log if e["method"] == "PUT"]
        self.assertEqual(len(puts), 2)  # exactly one PUT per job
        self.assertTrue(all(e["chunked"] for e in puts), puts)
        self.assertEqual(log[0]["path"], "/services/oauth2/token")
        pages = [e for e in log if e["path"].endswith("/results")]
        self.assertEqual(len(pages), 1)
        polls = [e for e in log if e["method"] == "GET" and e["path"].count("/") == 7 and "/jobs/ingest/" in e["path"]]
        self.assertGreaterEqual(len(polls), 2)
        self.assertTrue(all(e["status"] < 400 for e in log), [e for e in log if e["status"] >= 400])


if __name__ == "__main__":
    unittest.main()
