"""GET /sobjects/{Object}/updated/ and /deleted/ against docs/soql-and-rest.md §4.3 (and §4.2, §4.5, §6 "Change
tracking", traps 15-17): the answer shapes, seconds dropped, windows, latestDateCovered, earliestDateAvailable,
the 30/15-day reach, the 600,000-id cap, the recorded INVALID_REPLICATION_DATE texts, non-replicable objects,
hard deletes listed until purged."""

import json
import os
import tempfile
import unittest
import urllib.parse

from emu import EMU_DIR, EmuTestCase
from test_change_tracking import T0, ClockCase, ts


def rest(t):
    """A store date-time as REST writes it."""
    return t[:-1] + "+0000"


class Replication(ClockCase):
    def window(self, kind, start, end, obj="Account", v=None):
        q = "start=%s&end=%s" % (urllib.parse.quote(start, safe=""), urllib.parse.quote(end, safe=""))
        return self.api("GET", "/sobjects/%s/%s/?%s" % (obj, kind, q), **({"v": v} if v else {}))

    def ok(self, kind, start, end, obj="Account"):
        r = self.window(kind, start, end, obj)
        self.assertEqual(r.status, 200, r.text)
        return r.json()

    def test_updated_answers_the_ids_in_the_window_and_latest_date_covered(self):
        self.at("2025-11-01T10:00:00Z")
        a, = self.seed("Account", {"Name": "A"})
        self.later(30)
        b, = self.seed("Account", {"Name": "B"})
        self.later(60)
        c, = self.seed("Account", {"Name": "C"})
        self.later(3600)
        r = self.window("updated", "2025-11-01T10:00:00+00:00", "2025-11-01T10:01:00+00:00")
        self.assertEqual(r.headers["Content-Type"], "application/json;charset=UTF-8")
        self.assertEqual(r.text, '{"ids":["%s","%s"],"latestDateCovered":"2025-11-01T10:01:00.000+0000"}' % (a, b))
        # seconds are dropped from both ends (trap 15): 10:01:59 is 10:01, 10:02:30 is 10:02
        self.assertEqual(self.ok("updated", "2025-11-01T10:01:59Z", "2025-11-01T10:02:30Z")["ids"], [c])
        # an offset is an instant: 12:00+02:00 is 10:00 UTC
        self.assertEqual(self.ok("updated", "2025-11-01T12:00:00+02:00", "2025-11-01T12:05:00+02:00")["ids"],
                         [a, b, c])

    def test_latest_date_covered_stops_at_the_current_minute(self):
        self.at("2025-11-01T10:00:42Z")
        a, = self.seed("Account", {"Name": "A"})
        body = self.ok("updated", "2025-11-01T09:00:00Z", "2025-11-01T12:00:00Z")
        self.assertEqual(body, {"ids": [a], "latestDateCovered": "2025-11-01T10:00:00.000+0000"})
        self.config(replication_settle_seconds=120)  # commits still in flight: cover less
        body = self.ok("deleted", "2025-11-01T09:00:00Z", "2025-11-01T12:00:00Z")
        self.assertEqual(body["latestDateCovered"], "2025-11-01T09:58:00.000+0000")

    def test_every_write_but_a_formula_shows_in_updated(self):
        """Inserts, user and system updates, undeletes, merges move SystemModstamp; formulas do not (§4.5)."""
        a, b, c, d, e = self.seed("Account", *({"Name": n} for n in "ABCDE"))
        inv, = self.seed("Invoice__c", {"Invoice_Key__c": "K"})
        self.admin("POST", "/records/Account/delete", {"ids": [c]})
        self.later(120)
        self.admin("PATCH", "/records/Account", {"records": [{"Id": a}], "system": True})
        self.admin("PATCH", "/records/Account", {"records": [{"Id": b, "Phone": "1"}]})
        self.admin("POST", "/records/Account/undelete", {"ids": [c]})
        self.admin("POST", "/records/Account/merge", {"master": d, "losers": [e]})
        self.admin("POST", "/records/Invoice__c/formula", {"field": "Total_With_Tax__c", "value": 1})
        self.later(3600)
        self.assertEqual(self.ok("updated", "2025-11-01T00:00:00Z", "2025-11-01T00:01:00Z")["ids"], [])
        self.assertEqual(sorted(self.ok("updated", "2025-11-01T00:01:00Z", "2025-11-01T00:03:00Z")["ids"]),
                         sorted([a, b, c, d]))
        self.assertEqual(self.ok("updated", "2025-11-01T00:01:00Z", "2025-11-01T00:03:00Z", "Invoice__c")["ids"], [])

    def test_deleted_answers_the_recorded_shape(self):
        self.at("2025-11-02T22:00:00Z")
        a, b = self.seed("Account", {"Name": "A"}, {"Name": "B"})
        self.later(7 * 60 + 19)
        self.admin("POST", "/records/Account/delete", {"ids": [b]})
        self.at("2025-11-04T00:00:00Z")
        r = self.window("deleted", "2025-11-01T00:00:00+00:00", "2025-11-04T00:00:00+00:00")
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(list(r.json()), ["deletedRecords", "earliestDateAvailable", "latestDateCovered"])
        self.assertEqual(r.json(), {"deletedRecords": [{"id": b, "deletedDate": "2025-11-02T22:07:19.000+0000"}],
                                    "earliestDateAvailable": "2025-10-20T00:00:00.000+0000",
                                    "latestDateCovered": "2025-11-04T00:00:00.000+0000"})
        # the window is half-open on whole minutes: 22:07 is in [22:07, 22:08), not in [22:06, 22:07)
        self.assertEqual(len(self.ok("deleted", "2025-11-02T22:07:00Z", "2025-11-02T22:08:00Z")["deletedRecords"]),
                         1)
        self.assertEqual(self.ok("deleted", "2025-11-02T22:06:00Z", "2025-11-02T22:07:00Z")["deletedRecords"], [])

    def test_bulk_deletes_merges_and_hard_deletes_are_listed_and_undeletes_leave(self):
        a, b, c, m = self.seed("Account", *({"Name": n} for n in "ABCM"))
        self.later(60)
        self.run_job("Account", "delete", "Id\n%s\n" % a)
        self.run_job("Account", "hardDelete", "Id\n%s\n" % b)
        self.admin("POST", "/records/Account/merge", {"master": m, "losers": [c]})
        self.later(60)
        got = self.ok("deleted", "2025-11-01T00:00:00Z", "2025-11-01T00:05:00Z")["deletedRecords"]
        self.assertEqual(sorted(d["id"] for d in got), sorted([a, b, c]))
        self.assertEqual({d["deletedDate"] for d in got}, {rest(ts(1))})
        self.admin("POST", "/records/Account/undelete", {"ids": [a]})
        got = self.ok("deleted", "2025-11-01T00:00:00Z", "2025-11-01T00:05:00Z")["deletedRecords"]
        self.assertEqual(sorted(d["id"] for d in got), sorted([b, c]))

    def test_hard_deleted_rows_are_listed_until_purged(self):
        """Trap 16: hard deletes vanish from queryAll at once, from /deleted/ once purged; earliestDateAvailable
        then says the log is complete only after the purge, so a client knows it lost deletions."""
        self.at("2025-11-01T08:00:00Z")
        a, b = self.seed("Account", {"Name": "A"}, {"Name": "B"})
        self.admin("POST", "/records/Account/delete", {"ids": [a], "hard": True})
        self.later(90)
        self.admin("POST", "/records/Account/delete", {"ids": [b]})
        self.later(600)
        w = ("2025-11-01T07:00:00Z", "2025-11-01T09:00:00Z")
        self.assertEqual(self.soql("SELECT Id FROM Account", True)[0]["Id"], b)
        body = self.ok("deleted", *w)
        self.assertEqual([d["id"] for d in body["deletedRecords"]], [a, b])
        self.assertEqual(body["earliestDateAvailable"], "2025-10-17T08:11:00.000+0000")  # the bin's 15 days
        bin_ = self.admin("GET", "/recyclebin?object=Account")["objects"]["Account"]
        self.assertEqual((bin_["inBin"], [(d["id"], d["inBin"]) for d in bin_["deletions"]]),
                         ([b], [(a, False), (b, True)]))
        out = self.admin("POST", "/recyclebin/purge", {"object": "Account"})
        self.assertEqual(out, {"purged": {"Account": 1},
                               "earliestDateAvailable": {"Account": "2025-11-01T08:02:00.000Z"}})
        body = self.ok("deleted", *w)
        self.assertEqual((body["deletedRecords"], body["earliestDateAvailable"]),
                         ([], "2025-11-01T08:02:00.000+0000"))
        self.assertEqual(self.soql("SELECT Id FROM Account", True), [])

    def test_a_purge_of_old_deletions_keeps_the_newer_ones(self):
        a, b = self.seed("Account", {"Name": "A"}, {"Name": "B"})
        self.admin("POST", "/records/Account/delete", {"ids": [a]})
        self.later(3600)
        self.admin("POST", "/records/Account/delete", {"ids": [b], "hard": True})
        self.admin("POST", "/recyclebin/purge", {"before": "2025-11-01T00:30:00Z"})
        body = self.ok("deleted", "2025-11-01T00:00:00Z", "2025-11-01T02:00:00Z")
        self.assertEqual(([d["id"] for d in body["deletedRecords"]], body["earliestDateAvailable"]),
                         ([b], "2025-11-01T00:01:00.000+0000"))

    def test_expired_deletions_leave_the_log(self):
        a, b = self.seed("Account", {"Name": "A"}, {"Name": "B"})
        self.admin("POST", "/records/Account/delete", {"ids": [a]})
        self.later(2 * 86400)
        self.admin("POST", "/records/Account/delete", {"ids": [b], "hard": True})
        self.config(recycle_bin_days=3)
        self.later(86400 + 60)  # a's deletion is three days and a minute old
        body = self.ok("deleted", "2025-11-01T00:01:00Z", "2025-11-04T00:00:00Z")
        self.assertEqual(([d["id"] for d in body["deletedRecords"]], body["earliestDateAvailable"]),
                         ([b], "2025-11-01T00:01:00.000+0000"))
        self.assertApiError(self.window("deleted", "2025-11-01T00:00:00Z", "2025-11-04T00:00:00Z"), 400,
                            "INVALID_REPLICATION_DATE")

    def test_window_errors_carry_the_recorded_texts(self):
        self.at("2025-11-20T12:00:00Z")
        cases = [
            # end before start, or less than a minute after it once the seconds are dropped (logged text, sic)
            (("updated", "2025-11-20T10:00:00Z", "2025-11-20T09:00:00Z"),
             "startDate must be at least one minute greater than endDate"),
            (("deleted", "2025-11-20T10:00:10Z", "2025-11-20T10:00:50Z"),
             "startDate must be at least one minute greater than endDate"),
            (("updated", "2025-11-20T10:00:59Z", "2025-11-20T10:01:00Z"), None),
            # beyond the reach: 30 days for /updated/, the bin's 15 for /deleted/
            (("updated", "2025-10-21T11:59:00Z", "2025-11-20T10:00:00Z"),
             "startDate cannot be more than 30 days before the current date"),
            (("deleted", "2025-11-05T11:59:00Z", "2025-11-20T10:00:00Z"),
             "startDate cannot be more than 15 days before the current date"),
        ]
        for args, message in cases:
            r = self.window(*args)
            if message is None:
                self.assertEqual(r.status, 200, (args, r.text))
                continue
            self.assertApiError(r, 400, "INVALID_REPLICATION_DATE", message)
            self.assertEqual(list(r.json()[0]), ["message", "errorCode"])
        self.assertEqual(self.window("updated", "2025-10-21T12:00:00Z", "2025-11-20T10:00:00Z").status, 200)
        self.assertEqual(self.window("deleted", "2025-11-05T12:00:00Z", "2025-11-20T10:00:00Z").status, 200)
        self.config(replication_enabled_date="2025-11-10T00:00:00Z")
        for kind in ("updated", "deleted"):
            self.assertApiError(self.window(kind, "2025-11-09T00:00:00Z", "2025-11-20T10:00:00Z"), 400,
                                "INVALID_REPLICATION_DATE", "startDate before org replication enabled date")
        body = self.ok("deleted", "2025-11-10T00:00:00Z", "2025-11-20T10:00:00Z")
        self.assertEqual(body["earliestDateAvailable"], "2025-11-10T00:00:00.000+0000")

    def test_bad_or_missing_dates(self):
        for q in ("start=2025-11-01T00:00:00Z", "end=2025-11-01T00:00:00Z"):
            self.assertApiError(self.api("GET", "/sobjects/Account/updated/?" + q), 400, "MISSING_ARGUMENT")
        # an unencoded '+' is a space (trap 6): not a date-time
        r = self.api("GET", "/sobjects/Account/deleted/?start=2025-11-01T00:00:00+00:00&end=2025-11-02T00:00:00Z")
        self.assertApiError(r, 400, "MALFORMED_QUERY")
        self.assertApiError(self.window("updated", "yesterday", "2025-11-01T00:00:00Z"), 400, "MALFORMED_QUERY")

    def test_the_id_cap(self):
        self.seed("Account", *({"Name": "A%d" % i} for i in range(3)))
        self.config(replication_id_limit=2)
        w = ("2025-11-01T00:00:00Z", "2025-11-01T00:01:00Z")
        self.assertApiError(self.window("updated", *w), 400, "EXCEEDED_ID_LIMIT")
        self.admin("POST", "/records/Account/delete", {"ids": [r["Id"] for r in self.records("Account")]})
        self.assertApiError(self.window("deleted", *w), 400, "EXCEEDED_ID_LIMIT")
        self.config(replication_id_limit=3)
        self.assertEqual(len(self.ok("deleted", *w)["deletedRecords"]), 3)

    def test_non_replicable_objects_are_refused(self):
        self.admin("PATCH", "/schema/Account", {"replicateable": False})
        entry = next(o for o in self.api("GET", "/sobjects").json()["sobjects"] if o["name"] == "Account")
        self.assertFalse(entry["replicateable"])
        for kind in ("updated", "deleted"):
            self.assertApiError(self.window(kind, "2025-11-01T00:00:00Z", "2025-11-01T00:00:30Z"), 400,
                                "INVALID_TYPE", "sObject type Account is not replicable")
        self.config(not_replicable_error_code="API_ERROR")
        self.assertApiError(self.window("updated", "2025-11-01T00:00:00Z", "2025-11-01T01:00:00Z"), 400,
                            "API_ERROR")
        self.assertEqual(self.window("updated", "2025-11-01T00:00:00Z", "2025-11-01T01:00:00Z", "Contact").status,
                         200)
        self.assertEqual(self.window("updated", "2025-11-01T00:00:00Z", "2025-11-01T01:00:00Z", "Nope").status, 404)

    def test_optionally_a_start_before_earliest_date_available_fails(self):
        """The SOAP guide's other reading of earliestDateAvailable (§4.3, unverified): the call fails."""
        a, = self.seed("Account", {"Name": "A"})
        self.admin("POST", "/records/Account/delete", {"ids": [a]})
        self.later(120)
        self.admin("POST", "/recyclebin/purge", {})
        w = ("2025-11-01T00:00:00Z", "2025-11-01T01:00:00Z")
        self.assertEqual(self.ok("deleted", *w)["earliestDateAvailable"], "2025-11-01T00:01:00.000+0000")
        self.config(deleted_before_earliest_fails=True)
        self.assertApiError(self.window("deleted", *w), 400, "INVALID_REPLICATION_DATE")
        self.assertEqual(self.window("deleted", "2025-11-01T00:01:00Z", "2025-11-01T01:00:00Z").status, 200)

    def test_an_incremental_pull_with_overlap_catches_a_late_commit(self):
        """§4.4: windows chained on latestDateCovered miss a row committed late; a queryAll from the data's max
        SystemModstamp minus an overlap finds it."""
        self.at("2025-11-01T10:00:00Z")
        self.seed("Account", {"Name": "A"})
        self.later(300)
        self.seed("Account", {"Name": "B"})
        body = self.ok("updated", "2025-11-01T10:00:00Z", "2025-11-01T10:05:00Z")
        self.assertEqual(len(body["ids"]), 1)
        self.later(60)
        mark = max(r["SystemModstamp"] for r in self.soql("SELECT SystemModstamp FROM Account", True))
        self.admin("POST", "/clock", {"skew_seconds": 240, "skew_writes": 1})
        late, = self.seed("Account", {"Name": "late"})
        nxt = self.ok("updated", body["latestDateCovered"].replace(".000+0000", "Z"), "2025-11-01T10:06:00Z")
        self.assertNotIn(late, nxt["ids"])  # stamped 10:02: behind the window already read
        since = self.soql("SELECT Id FROM Account WHERE SystemModstamp >= %s" % "2025-11-01T09:55:00Z", True)
        self.assertIn(late, [r["Id"] for r in since])
        self.assertEqual(mark, "2025-11-01T10:05:00.000+0000")

    def test_versions_and_trailing_slash(self):
        w = "?start=2025-11-01T00%3A00%3A00Z&end=2025-11-01T01%3A00%3A00Z"
        for path in ("/sobjects/Account/updated" + w, "/sobjects/account/deleted/" + w):
            self.assertEqual(self.api("GET", path, v="41.0").status, 200, path)
        self.assertEqual(self.api("POST", "/sobjects/Account/updated" + w).status, 405)


class FallbackStamp(EmuTestCase):
    """§4.3 "Date used": SystemModstamp, else LastModifiedDate; an object with neither is not replicable."""

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(EMU_DIR, "metadata.json"), encoding="utf-8") as fh:
            meta = json.load(fh)
        meta["objects"]["Legacy__c"] = {"keyPrefix": "a09", "systemFields": False, "fields": [
            {"name": "Id", "type": "id", "createable": False, "updateable": False},
            {"name": "Name", "type": "string"},
            {"name": "LastModifiedDate", "type": "datetime", "createable": False, "updateable": False}]}
        meta["objects"]["Bare__c"] = {"keyPrefix": "a08", "systemFields": False, "fields": [
            {"name": "Id", "type": "id", "createable": False, "updateable": False}, {"name": "Name"}]}
        cls.tmp = tempfile.mkdtemp(prefix="sfemu-fallback-")
        path = os.path.join(cls.tmp, "metadata.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(meta, fh)
        cls.emu_args = ("--metadata", path)
        EmuTestCase.setUpClass.__func__(cls)

    def test_last_modified_date_stands_in(self):
        self.admin("POST", "/clock", {"set": T0, "freeze": True})
        rid, = self.admin("POST", "/records/Legacy__c", [{"Name": "x", "LastModifiedDate": "2025-10-31T23:30:00Z"}])[
            "ids"]
        r = self.api("GET", "/sobjects/Legacy__c/updated/?start=2025-10-31T23%3A00%3A00Z&end=2025-11-01T00%3A00%3A00Z")
        self.assertEqual(r.json()["ids"], [rid], r.text)
        r = self.api("GET", "/sobjects/Bare__c/updated/?start=2025-10-31T23%3A00%3A00Z&end=2025-11-01T00%3A00%3A00Z")
        self.assertApiError(r, 400, "INVALID_TYPE", "sObject type Bare__c is not replicable")


if __name__ == "__main__":
    unittest.main()
