"""Item 6: describe, limits, Sforce-Limit-Info, REQUEST_LIMIT_EXCEEDED, daily quotas, CLI login calls; record
counts (docs/soql-and-rest.md §5.1)."""

import atexit
import json
import os
import tempfile
import threading
import time
import unittest

from emu import EMU_DIR, ORG, EmuTestCase


class Describe(EmuTestCase):
    def test_sobjects_list(self):
        r = self.api("GET", "/sobjects")
        names = {o["name"]: o for o in r.json()["sobjects"]}
        for n, prefix in (("Account", "001"), ("Contact", "003"), ("Lead", "00Q"), ("User", "005")):
            self.assertEqual(names[n]["keyPrefix"], prefix)
        self.assertEqual(names["Contact"]["urls"]["describe"], "/services/data/v62.0/sobjects/Contact/describe")

    def test_describe_fields(self):
        d = self.api("GET", "/sobjects/Contact/describe").json()
        f = {x["name"]: x for x in d["fields"]}
        self.assertEqual(f["LastName"]["nillable"], False)
        self.assertEqual(f["LastName"]["length"], 80)
        self.assertTrue(f["External_Id__c"]["externalId"])
        self.assertTrue(f["External_Id__c"]["unique"])
        self.assertEqual((f["AccountId"]["type"], f["AccountId"]["referenceTo"], f["AccountId"]["relationshipName"]),
                         ("reference", ["Account"], "Account"))
        self.assertEqual(f["Email"]["type"], "email")
        self.assertEqual(f["Id"]["type"], "id")
        lead = {x["name"]: x for x in self.api("GET", "/sobjects/lead/describe").json()["fields"]}
        self.assertTrue(lead["Region__c"]["restrictedPicklist"])
        self.assertEqual([p["value"] for p in lead["Region__c"]["picklistValues"]], ["AMER", "EMEA", "APAC"])
        self.assertFalse(lead["Company"]["nillable"])
        self.assertApiError(self.api("GET", "/sobjects/Nope/describe"), 404, "NOT_FOUND")

    def test_record_by_id_for_cli(self):
        r = self.api("GET", "/sobjects/User/" + ORG["user_id"])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["Username"], ORG["user"]["username"])
        self.assertEqual(self.api("GET", "/sobjects/User/005Em00000000zzAAA").status, 404)

    def test_cli_login_sequence(self):
        # what `sf org login access-token` calls (docs/platform.md §8)
        self.assertEqual(self.request("GET", "/services/oauth2/userinfo").status, 200)
        self.assertEqual(self.request("GET", "/services/data").status, 200)
        self.assertEqual(self.api("GET", "/sobjects/User/" + ORG["user_id"]).status, 200)
        org = self.api("GET", "/query?q=SELECT+Name,+InstanceName,+IsSandbox,+TrialExpirationDate,"
                              "+NamespacePrefix+FROM+Organization").json()
        self.assertEqual(org["records"][0]["Name"], ORG["org_name"])
        self.assertEqual(self.api("GET", "/query?q=SELECT+Id+FROM+ScratchOrgInfo+LIMIT+1").status, 400)


class Limits(EmuTestCase):
    def test_limits_resource(self):
        body = self.api("GET", "/limits").json()
        for k in ("DailyApiRequests", "DailyBulkApiBatches", "DailyBulkV2QueryJobs", "DailyBulkV2QueryFileStorageMB"):
            self.assertEqual(set(body[k]), {"Max", "Remaining"})
        self.assertEqual(body["DailyApiRequests"]["Max"], 15000)
        self.assertEqual(body["DailyApiRequests"]["Remaining"], 14999)
        self.run_job("Account", "insert", "Name\nA\n")
        body = self.api("GET", "/limits").json()
        self.assertEqual(body["DailyBulkApiBatches"]["Remaining"], 14999)

    def test_limit_info_header_counts_every_call(self):
        seen = []
        for _ in range(3):
            seen.append(self.api("GET", "/jobs/ingest").headers["Sforce-Limit-Info"])
        self.assertEqual(seen, ["api-usage=1/15000", "api-usage=2/15000", "api-usage=3/15000"])
        r = self.api("GET", "/jobs/ingest/750Em00000000zzAAA")
        self.assertEqual(r.headers["Sforce-Limit-Info"], "api-usage=4/15000")

    def test_request_limit_exceeded(self):
        self.config(daily_api_limit=3)
        for _ in range(3):
            self.assertEqual(self.api("GET", "/limits").status, 200)
        r = self.api("GET", "/jobs/ingest")
        self.assertApiError(r, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self.assertEqual(r.text, '[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]')
        self.assertIsNone(r.headers.get("Retry-After"))
        self.assertEqual(r.headers["Sforce-Limit-Info"], "api-usage=3/3")
        self.admin("POST", "/usage", {"api": 0})
        self.assertEqual(self.api("GET", "/limits").status, 200)

    def test_concurrent_request_limit(self):
        self.config(max_concurrent_requests=2)
        self.fault(method="GET", path="/sobjects$", action="stall", ms=800, count=2)
        results = []
        ts = [threading.Thread(target=lambda: results.append(self.api("GET", "/sobjects").status)) for _ in range(2)]
        for t in ts:
            t.start()
        time.sleep(0.3)
        r = self.api("GET", "/limits")
        for t in ts:
            t.join()
        self.assertApiError(r, 403, "REQUEST_LIMIT_EXCEEDED",
                            "ConcurrentRequests (Concurrent API Requests) Limit exceeded.")
        self.assertEqual(results, [200, 200])

    def test_daily_batches_and_records_fail_job(self):
        self.config(batch_size=2, daily_batches_limit=2, shuffle_results=False)
        info = self.run_job("Account", "insert", "Name\nA\nB\nC\nD\nE\n")
        self.assertEqual(info["state"], "Failed")
        self.assertTrue(info["errorMessage"].startswith("ExceededQuota : "))
        self.assertEqual(info["numberRecordsProcessed"], 4)
        self.assertEqual(self.api("GET", "/jobs/ingest/%s/unprocessedrecords" % info["id"]).text, '"Name"\n"E"')
        self.admin("POST", "/reset")
        self.config(daily_records_limit=3, batch_size=2)
        info = self.run_job("Account", "insert", "Name\nA\nB\nC\nD\nE\nF\n")
        self.assertEqual(info["state"], "Failed")
        self.assertEqual(info["numberRecordsProcessed"], 4)


def _metadata_with(names):
    """metadata.json plus objects of the given names (each with a Name field), as a temporary file."""
    with open(os.path.join(EMU_DIR, "metadata.json"), encoding="utf-8") as fh:
        doc = json.load(fh)
    for i, name in enumerate(names):
        doc["objects"][name] = {"keyPrefix": "a%02d" % (i + 50), "fields": [{"name": "Name", "type": "string"}]}
    fd, path = tempfile.mkstemp(prefix="sfemu-meta-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    atexit.register(os.unlink, path)
    return path


class RecordCount(EmuTestCase):
    """docs/soql-and-rest.md §5.1 and §6 "Counts and limits": GET /limits/recordCount."""
    UNCOUNTED = ["AccountHistory", "AccountShare", "AccountFeed", "AccountChangeEvent", "Invoice__Share",
                 "OwnerSharingRule"]
    emu_args = ("--metadata", _metadata_with(UNCOUNTED))

    def counts(self, query="", v="62.0"):
        r = self.api("GET", "/limits/recordCount" + query, v=v)
        self.assertEqual(r.status, 200, r.text)
        return r

    def test_shape_and_the_seeded_org(self):
        r = self.counts()
        self.assertEqual(r.text, '{"sObjects":[{"count":1,"name":"Organization"},{"count":1,"name":"User"}]}')
        self.assertEqual(r.headers["Sforce-Limit-Info"], "api-usage=1/15000")

    def test_named_objects_zero_counts_and_unknown_names_left_out(self):
        self.run_job("Account", "insert", "Name\nA\nB\nC\n")
        self.run_job("Lead", "insert", "LastName,Company\nOkafor,Farms\n")
        body = self.counts("?sObjects=Lead,account,Nope,Contact").json()
        self.assertEqual(body, {"sObjects": [{"count": 3, "name": "Account"}, {"count": 1, "name": "Lead"}]})
        self.assertEqual([o["name"] for o in self.counts().json()["sObjects"]],
                         ["Account", "Lead", "Organization", "User"])

    def test_names_with_blanks_duplicates_and_an_empty_list(self):
        self.run_job("Account", "insert", "Name\nA\n")
        self.assertEqual(self.counts("?sObjects=%20Account%20,,User").json(),
                         {"sObjects": [{"count": 1, "name": "Account"}, {"count": 1, "name": "User"}]})
        self.assertEqual(self.counts("?sObjects=Account,account").json(),
                         {"sObjects": [{"count": 1, "name": "Account"}]})
        self.assertEqual(self.counts("?sObjects=").json(), self.counts().json())  # empty: as if absent

    def test_recycle_bin_excluded(self):
        self.config(shuffle_results=False)
        info = self.run_job("Account", "insert", "Name\nA\nB\n")
        first = self.results(info["id"], "successfulResults")[0]["sf__Id"]
        self.run_job("Account", "delete", "Id\n%s\n" % first)
        self.assertEqual(self.counts("?sObjects=Account").json(), {"sObjects": [{"count": 1, "name": "Account"}]})

    def test_stale_snapshot_and_set_counts(self):
        self.run_job("Account", "insert", "Name\nA\n")
        out = self.admin("POST", "/recordcount", {"snapshot": True})
        self.assertEqual((out["live"], out["counts"]["Account"]), (False, 1))
        self.run_job("Account", "insert", "Name\nB\nC\n")
        self.assertEqual(self.counts("?sObjects=Account").json()["sObjects"], [{"count": 1, "name": "Account"}])
        self.admin("POST", "/recordcount", {"counts": {"lead": 5000000, "Account": 0}})
        self.assertEqual(self.counts("?sObjects=Account,Lead").json()["sObjects"],
                         [{"count": 5000000, "name": "Lead"}])
        self.assertEqual(self.admin("GET", "/recordcount")["counts"]["Lead"], 5000000)
        out = self.admin("POST", "/recordcount", {"snapshot": False})
        self.assertEqual((out["live"], out["counts"]["Account"], out["counts"]["Lead"]), (True, 3, 0))
        self.assertEqual(self.counts("?sObjects=Account,Lead").json()["sObjects"], [{"count": 3, "name": "Account"}])
        self.admin("POST", "/recordcount", {"snapshot": True})
        self.admin("POST", "/reset")
        self.assertTrue(self.admin("GET", "/recordcount")["live"])
        for body, status in (({"counts": {"Nope": 1}}, 404), ({"counts": {"Account": -1}}, 400),
                             ({"counts": {"Account": "many"}}, 400)):
            self.assertEqual(self.request("POST", "/__emulator/recordcount", body, token=None).status, status, body)

    def test_history_share_feed_and_change_event_objects_left_out(self):
        for name in self.UNCOUNTED:
            self.admin("POST", "/records/" + name, [{"Name": "x"}])
        self.admin("POST", "/records/Account", [{"Name": "x"}])
        self.assertEqual([o["name"] for o in self.counts().json()["sObjects"]], ["Account", "Organization", "User"])
        self.assertEqual(self.counts("?sObjects=" + ",".join(self.UNCOUNTED)).json(), {"sObjects": []})
        self.assertEqual(self.api("GET", "/query?q=SELECT+Name+FROM+AccountHistory").json()["totalSize"], 1)

    def test_from_api_40(self):
        self.assertEqual(self.counts(v="40.0").json()["sObjects"][0]["name"], "Organization")
        self.assertApiError(self.api("GET", "/limits/recordCount", v="39.0"), 404, "NOT_FOUND")


if __name__ == "__main__":
    unittest.main()
