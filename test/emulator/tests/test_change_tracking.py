"""Change tracking against docs/soql-and-rest.md §4.1, §4.2, §4.5 and §6 "Change tracking": SystemModstamp on every
write from the emulator clock (set, advanced, frozen, skewed), LastModifiedDate only on user writes, the recycle
bin (soft delete, undelete, hard delete, purge, expiry), merges with MasterRecordId, formula values that change
without a stamp. /updated/ and /deleted/ are in test_replication.py."""

import email.utils
import unittest

from emu import EmuTestCase

T0 = "2025-11-01T00:00:00.000Z"


def ts(minutes=0, seconds=0):
    """T0 plus an offset, as the store writes date-times."""
    s = minutes * 60 + seconds
    return "2025-11-01T%02d:%02d:%02d.000Z" % (s // 3600, s // 60 % 60, s % 60)


class ClockCase(EmuTestCase):
    def setUp(self):
        EmuTestCase.setUp(self)
        self.at(T0)

    def at(self, iso):
        """The emulator clock at iso, standing still (every write stamped exactly so)."""
        return self.admin("POST", "/clock", {"set": iso, "freeze": True})

    def later(self, seconds):
        return self.admin("POST", "/clock", {"advance_seconds": seconds})

    def rec(self, obj, rid):
        return next(r for r in self.records(obj) if r["Id"] == rid)

    def seed(self, obj, *recs):
        return self.admin("POST", "/records/" + obj, list(recs))["ids"]

    def soql(self, q, all_rows=False):
        import urllib.parse
        r = self.api("GET", "/%s?q=%s" % ("queryAll" if all_rows else "query", urllib.parse.quote(q)))
        self.assertEqual(r.status, 200, r.text)
        return r.json()["records"]


class Clock(ClockCase):
    def test_clock_can_be_set_frozen_advanced_and_read(self):
        st = self.admin("GET", "/clock")
        self.assertEqual((st["now"], st["frozen"]), (T0, True))
        self.assertEqual(self.later(90)["now"], ts(1, 30))
        st = self.admin("POST", "/clock", {"freeze": False})
        self.assertFalse(st["frozen"])
        self.assertIn(st["now"], (ts(1, 30), ts(1, 31)))  # runs on from where it stood
        r = self.request("POST", "/__emulator/clock", {"sett": T0}, token=None)
        self.assertEqual(r.status, 400, r.text)

    def test_reset_puts_the_clock_back(self):
        self.admin("POST", "/clock", {"skew_seconds": 30})
        self.admin("POST", "/reset")
        st = self.admin("GET", "/clock")
        self.assertEqual((st["frozen"], st["skew_seconds"], st["offset_seconds"]), (False, 0.0, 0.0))

    def test_date_header_follows_the_emulator_clock(self):
        """A client takes "now" from the server's Date header (§4.4 step 1): it must be the records' clock."""
        r = self.api("GET", "/limits")
        self.assertEqual(email.utils.parsedate_to_datetime(r.headers["Date"]).isoformat(), "2025-11-01T00:00:00+00:00")


class Stamps(ClockCase):
    def test_seeding_stamps_every_audit_field_from_the_clock(self):
        rid, = self.seed("Account", {"Name": "A"})
        r = self.rec("Account", rid)
        self.assertEqual((r["CreatedDate"], r["LastModifiedDate"], r["SystemModstamp"]), (T0, T0, T0))
        self.later(60)
        out = self.admin("POST", "/records/Account", {"generate": {"count": 2, "values": {"Name": "G{n}"}}})
        self.assertEqual(self.rec("Account", out["last_id"])["SystemModstamp"], ts(1))

    def test_a_seed_keeps_the_stamps_it_gives_in_canonical_form(self):
        """Back-dated imports (Set Audit Fields): LastModifiedDate given, SystemModstamp still the clock's."""
        a, b = self.seed("Account", {"Name": "A", "LastModifiedDate": "2025-10-01T10:00:00+02:00"},
                         {"Name": "B", "SystemModstamp": "2025-10-20T00:00:00Z", "CreatedDate": None})
        ra, rb = self.rec("Account", a), self.rec("Account", b)
        self.assertEqual((ra["LastModifiedDate"], ra["SystemModstamp"]), ("2025-10-01T08:00:00.000Z", T0))
        self.assertEqual((rb["SystemModstamp"], rb["CreatedDate"]), ("2025-10-20T00:00:00.000Z", T0))
        r = self.request("POST", "/__emulator/records/Account", [{"Name": "C", "SystemModstamp": "yesterday"}],
                         token=None)
        self.assertEqual(r.status, 400, r.text)

    def test_bulk_insert_update_delete_stamp_the_rows(self):
        info = self.run_job("Account", "insert", "Name,External_Id__c\nA,E1\nB,E2\n")
        self.assertEqual(info["numberRecordsFailed"], 0)
        a, b = sorted(self.records("Account"), key=lambda r: r["Name"])
        self.later(60)
        self.run_job("Account", "upsert", "External_Id__c,Phone\nE1,123\n", externalIdFieldName="External_Id__c")
        self.later(60)
        self.run_job("Account", "delete", "Id\n%s\n" % b["Id"])
        ra, rb = self.rec("Account", a["Id"]), self.rec("Account", b["Id"])
        self.assertEqual((ra["CreatedDate"], ra["LastModifiedDate"], ra["SystemModstamp"]), (T0, ts(1), ts(1)))
        self.assertEqual((rb["IsDeleted"], rb["CreatedDate"], rb["SystemModstamp"]), ("true", T0, ts(2)))

    def test_user_writes_move_both_stamps_system_writes_only_systemmodstamp(self):
        """§4.1: automation moves SystemModstamp and not LastModifiedDate, so LastModifiedDate misses it."""
        rid, = self.seed("Account", {"Name": "A"})
        self.later(60)
        out = self.admin("PATCH", "/records/Account", {"records": [{"Id": rid, "Phone": "555"}]})
        self.assertEqual((out["SystemModstamp"], out["LastModifiedDate"]), (ts(1), ts(1)))
        self.later(60)
        out = self.admin("PATCH", "/records/Account", {"records": [{"Id": rid[:15]}], "system": True})
        self.assertEqual((out["SystemModstamp"], out["LastModifiedDate"]), (ts(2), None))
        self.later(60)
        self.admin("PATCH", "/records/Account", {"records": [{"Id": rid, "Rating": "Hot"}], "system": True})
        r = self.rec("Account", rid)
        self.assertEqual((r["Phone"], r["Rating"], r["LastModifiedDate"], r["SystemModstamp"]),
                         ("555", "Hot", ts(1), ts(3)))
        # what a pull by LastModifiedDate would miss, one by SystemModstamp sees (trap 14)
        self.assertEqual(self.soql("SELECT Id FROM Account WHERE LastModifiedDate > %s" % ts(2)[:19] + "Z"), [])
        self.assertEqual(len(self.soql("SELECT Id FROM Account WHERE SystemModstamp > %sZ" % ts(2)[:19])), 1)

    def test_admin_updates_check_their_records_and_fields(self):
        rid, = self.seed("Account", {"Name": "A", "External_Id__c": "X"})
        other, = self.seed("Account", {"Name": "B", "External_Id__c": "Y"})
        for body, status, code in (
                ({"records": [{"Id": "001Em0000000099ZZZ", "Name": "?"}]}, 404, "NOT_FOUND"),
                ({"records": [{"Id": rid, "Nope__c": 1}]}, 400, "INVALID_FIELD"),
                ({"records": [{"Id": rid, "SystemModstamp": T0}]}, 400, "INVALID_FIELD"),
                ({"records": [{"Id": rid, "External_Id__c": "y"}]}, 400, "DUPLICATE_VALUE")):
            r = self.request("PATCH", "/__emulator/records/Account", body, token=None)
            self.assertEqual((r.status, r.json()[0]["errorCode"]), (status, code), body)

    def test_a_skewed_write_is_stamped_behind_the_current_max(self):
        """A late commit (§4.4 step 3, §6): the row surfaces with a stamp older than rows already visible."""
        self.later(600)
        first, = self.seed("Account", {"Name": "seen"})
        self.assertEqual(self.admin("POST", "/clock", {"skew_seconds": 90, "skew_writes": 1})["skew_seconds"], 90)
        late, = self.seed("Account", {"Name": "late"})
        after, = self.seed("Account", {"Name": "after"})
        stamps = {n: self.rec("Account", rid)["SystemModstamp"] for n, rid in
                  (("seen", first), ("late", late), ("after", after))}
        self.assertEqual(stamps, {"seen": ts(10), "late": ts(8, 30), "after": ts(10)})

    def test_a_lasting_skew_applies_to_bulk_jobs_until_cleared(self):
        """A lagging app server: every write behind the clock, Bulk ingest included, until the skew is 0 again."""
        self.admin("POST", "/clock", {"skew_seconds": 30, "set": "2025-11-01T00:10:00Z"})
        self.run_job("Account", "insert", "Name\nA\n")
        self.admin("PATCH", "/records/Account", {"records": [{"Id": self.records("Account")[0]["Id"], "Phone": "1"}]})
        self.assertEqual(self.records("Account")[0]["SystemModstamp"], ts(9, 30))
        self.admin("POST", "/clock", {"skew_seconds": 0})
        self.run_job("Account", "insert", "Name\nB\n")
        self.assertEqual(sorted(r["SystemModstamp"] for r in self.records("Account")), [ts(9, 30), ts(10)])


class RecycleBin(ClockCase):
    def test_a_delete_goes_to_the_bin_hidden_from_query_kept_by_queryall(self):
        a, b = self.seed("Account", {"Name": "A"}, {"Name": "B"})
        self.later(60)
        out = self.admin("POST", "/records/Account/delete", {"ids": [b]})
        self.assertEqual((out["ids"], out["deletedDate"]), ([b], ts(1)))
        self.assertEqual([r["Id"] for r in self.soql("SELECT Id FROM Account")], [a])
        rows = self.soql("SELECT Id, IsDeleted, SystemModstamp, LastModifiedDate FROM Account ORDER BY Name", True)
        self.assertEqual([(r["Id"], r["IsDeleted"], r["SystemModstamp"]) for r in rows],
                         [(a, False, "2025-11-01T00:00:00.000+0000"), (b, True, "2025-11-01T00:01:00.000+0000")])
        self.assertEqual(self.api("GET", "/sobjects/Account/%s" % b).status, 404)
        for method, path, body in (("POST", "/delete", {"ids": [b]}), ("PATCH", "", {"records": [{"Id": b}]})):
            r = self.request(method, "/__emulator/records/Account" + path, body, token=None)
            self.assertEqual((r.status, r.json()[0]["errorCode"]), (400, "ENTITY_IS_DELETED"), method)

    def test_undelete_restores_the_row_and_stamps_it(self):
        rid, = self.seed("Account", {"Name": "A", "External_Id__c": "E1"})
        self.later(60)
        self.admin("POST", "/records/Account/delete", {"ids": [rid]})
        self.later(60)
        out = self.admin("POST", "/records/Account/undelete", {"ids": [rid]})
        self.assertEqual(out, {"ids": [rid], "SystemModstamp": ts(2)})
        r = self.rec("Account", rid)
        self.assertEqual((r["IsDeleted"], r["SystemModstamp"], r["LastModifiedDate"]), ("false", ts(2), ts(2)))
        self.assertEqual(len(self.soql("SELECT Id FROM Account")), 1)
        # the external id is indexed again: an upsert updates the undeleted row
        self.run_job("Account", "upsert", "External_Id__c,Phone\nE1,9\n", externalIdFieldName="External_Id__c")
        self.assertEqual(self.rec("Account", rid)["Phone"], "9")
        self.assertEqual(len(self.records("Account")), 1)

    def test_undelete_refuses_what_is_not_in_the_bin(self):
        live, hard, dup = self.seed("Account", {"Name": "L"}, {"Name": "H"}, {"Name": "D", "External_Id__c": "E"})
        self.admin("POST", "/records/Account/delete", {"ids": [hard], "hard": True})
        self.admin("POST", "/records/Account/delete", {"ids": [dup]})
        self.seed("Account", {"Name": "D2", "External_Id__c": "e"})
        for rid, code in ((live, "UNDELETE_FAILED"), (hard, "UNDELETE_FAILED"), (dup, "DUPLICATE_VALUE")):
            r = self.request("POST", "/__emulator/records/Account/undelete", {"ids": [rid]}, token=None)
            self.assertEqual((r.status, r.json()[0]["errorCode"]), (400, code), rid)
        self.admin("PATCH", "/schema/Account", {"undeletable": False})
        r = self.request("POST", "/__emulator/records/Account/undelete", {"ids": [dup]}, token=None)
        self.assertEqual(r.status, 400, r.text)

    def test_hard_delete_removes_the_row_from_query_and_queryall(self):
        a, b = self.seed("Account", {"Name": "A"}, {"Name": "B"})
        self.admin("POST", "/records/Account/delete", {"ids": [a], "hard": True})
        self.run_job("Account", "hardDelete", "Id\n%s\n" % b)
        self.assertEqual(self.soql("SELECT Id FROM Account", True), [])
        self.assertEqual(self.records("Account"), [])

    def test_purging_the_bin_removes_its_rows_from_queryall(self):
        a, b = self.seed("Account", {"Name": "A"}, {"Name": "B"})
        c, = self.seed("Contact", {"LastName": "C"})
        self.admin("POST", "/records/Account/delete", {"ids": [a, b]})
        self.admin("POST", "/records/Contact/delete", {"ids": [c]})
        out = self.admin("POST", "/recyclebin/purge", {"ids": [a]})
        self.assertEqual(out["purged"], {"Account": 1})
        self.assertEqual([r["Id"] for r in self.soql("SELECT Id FROM Account", True)], [b])
        self.assertEqual(self.admin("POST", "/recyclebin/purge", {"object": "Account"})["purged"], {"Account": 1})
        self.assertEqual(self.soql("SELECT Id FROM Account", True), [])
        self.assertEqual(len(self.soql("SELECT Id FROM Contact", True)), 1)
        self.assertEqual(self.admin("POST", "/recyclebin/purge", {})["purged"], {"Contact": 1})
        self.assertEqual(self.soql("SELECT Id FROM Contact", True), [])

    def test_bin_rows_expire_after_the_configured_days(self):
        a, b = self.seed("Account", {"Name": "A"}, {"Name": "B"})
        self.admin("POST", "/records/Account/delete", {"ids": [a]})
        self.later(86400)
        self.admin("POST", "/records/Account/delete", {"ids": [b]})
        self.later(14 * 86400)
        self.assertEqual(len(self.soql("SELECT Id FROM Account", True)), 2)  # 15 days to the minute: still kept
        self.later(60)
        self.assertEqual([r["Id"] for r in self.soql("SELECT Id FROM Account", True)], [b])
        self.config(recycle_bin_days=1)
        self.assertEqual(self.soql("SELECT Id FROM Account", True), [])
        self.assertEqual(self.records("Account"), [])
        r = self.request("POST", "/__emulator/records/Account/undelete", {"ids": [b]}, token=None)
        self.assertEqual(r.status, 400, r.text)

    def test_bulk_query_all_sees_the_bin_and_not_expired_rows(self):
        a, b = self.seed("Account", {"Name": "A"}, {"Name": "B"})
        self.admin("POST", "/records/Account/delete", {"ids": [a]})
        self.assertEqual(sorted(r["Id"] for r in self.query_rows("SELECT Id FROM Account", "queryAll")),
                         sorted([a, b]))
        self.later(16 * 86400)
        self.assertEqual([r["Id"] for r in self.query_rows("SELECT Id FROM Account", "queryAll")], [b])

    def test_merge_deletes_the_losers_with_masterrecordid_and_reparents(self):
        m, l1, l2 = self.seed("Account", {"Name": "M"}, {"Name": "L1"}, {"Name": "L2"})
        c, = self.seed("Contact", {"LastName": "C", "AccountId": l1})
        inv, = self.seed("Invoice__c", {"Invoice_Key__c": "K", "Account__c": l2})
        self.later(60)
        out = self.admin("POST", "/records/Account/merge",
                         {"master": m, "losers": [l1, l2], "values": {"Phone": "42"}})
        self.assertEqual((out["merged"], out["SystemModstamp"]), ([l1, l2], ts(1)))
        self.assertEqual(out["reparented"], {"Contact": [c], "Invoice__c": [inv]})
        rows = self.soql("SELECT Id, IsDeleted, MasterRecordId, Phone, SystemModstamp FROM Account ORDER BY Name", True)
        self.assertEqual([(r["Id"], r["IsDeleted"], r["MasterRecordId"], r["Phone"]) for r in rows],
                         [(l1, True, m, None), (l2, True, m, None), (m, False, None, "42")])
        self.assertEqual({r["SystemModstamp"] for r in rows}, {"2025-11-01T00:01:00.000+0000"})
        self.assertEqual(self.rec("Contact", c)["AccountId"], m)
        self.assertEqual(self.rec("Contact", c)["SystemModstamp"], ts(1))
        self.assertEqual(self.rec("Invoice__c", inv)["Account__c"], m)
        # an undeleted loser is no longer merged
        self.admin("POST", "/records/Account/undelete", {"ids": [l1]})
        self.assertNotIn("MasterRecordId", self.rec("Account", l1))

    def test_merge_works_on_contacts_and_leads_only_among_mergeable_objects(self):
        for obj, vals in (("Contact", {"LastName": "x"}), ("Lead", {"LastName": "x", "Company": "c"})):
            m, l = self.seed(obj, dict(vals), dict(vals))
            self.admin("POST", "/records/%s/merge" % obj, {"master": m, "losers": [l]})
            self.assertEqual(self.rec(obj, l)["MasterRecordId"], m)
        sobjects = {o["name"]: o["mergeable"] for o in self.api("GET", "/sobjects").json()["sobjects"]}
        self.assertEqual(sobjects, {"Account": True, "Contact": True, "Lead": True, "User": False,
                                    "Organization": False, "Group": False, "Invoice__c": False})
        a, b = self.seed("Invoice__c", {"Invoice_Key__c": "1"}, {"Invoice_Key__c": "2"})
        for obj, body in (("Invoice__c", {"master": a, "losers": [b]}),
                          ("Account", {"master": a, "losers": []})):
            r = self.request("POST", "/__emulator/records/%s/merge" % obj, body, token=None)
            self.assertEqual(r.status, 400, r.text)


class Formulas(ClockCase):
    def test_a_formula_changes_for_every_row_without_any_stamp_moving(self):
        """§4.5, trap 17: no SystemModstamp change, so only a re-read finds the new values."""
        a, b = self.seed("Invoice__c", {"Invoice_Key__c": "1"}, {"Invoice_Key__c": "2"})
        self.admin("POST", "/records/Invoice__c/delete", {"ids": [b]})
        before = {r["Id"]: (r["SystemModstamp"], r["LastModifiedDate"]) for r in self.records("Invoice__c")}
        self.later(60)
        out = self.admin("POST", "/records/Invoice__c/formula", {"field": "Total_With_Tax__c", "value": 12.5})
        self.assertEqual(out["updated"], 2)
        rows = self.records("Invoice__c")
        self.assertEqual({r["Id"]: r["Total_With_Tax__c"] for r in rows}, {a: "12.50", b: "12.50"})
        self.assertEqual({r["Id"]: (r["SystemModstamp"], r["LastModifiedDate"]) for r in rows}, before)
        self.assertEqual(self.soql("SELECT Total_With_Tax__c FROM Invoice__c")[0]["Total_With_Tax__c"], 12.5)
        # rows written later compute the same formula
        c, = self.seed("Invoice__c", {"Invoice_Key__c": "3"})
        self.run_job("Invoice__c", "insert", "Invoice_Key__c\n4\n")
        self.assertEqual({r["Total_With_Tax__c"] for r in self.records("Invoice__c")}, {"12.50"})

    def test_a_formula_changes_per_row(self):
        a, b = self.seed("Invoice__c", {"Invoice_Key__c": "1"}, {"Invoice_Key__c": "2"})
        self.admin("POST", "/records/Invoice__c/formula", {"field": "total_with_tax__c", "values": {a[:15]: "3"}})
        vals = {r["Id"]: r.get("Total_With_Tax__c") for r in self.records("Invoice__c")}
        self.assertEqual(vals, {a: "3.00", b: None})
        self.assertEqual({r["SystemModstamp"] for r in self.records("Invoice__c")}, {T0})

    def test_only_calculated_fields_take_formula_values(self):
        self.seed("Invoice__c", {"Invoice_Key__c": "1"})
        for body, status in (({"field": "Amount__c", "value": 1}, 400), ({"field": "Nope__c", "value": 1}, 404),
                             ({"field": "Total_With_Tax__c", "value": "abc"}, 400),
                             ({"field": "Total_With_Tax__c"}, 400)):
            r = self.request("POST", "/__emulator/records/Invoice__c/formula", body, token=None)
            self.assertEqual(r.status, status, body)
        r = self.request("POST", "/__emulator/records/Contact/formula", {"field": "Name", "value": "x"}, token=None)
        self.assertEqual(r.status, 400, r.text)

    def test_a_formula_field_added_at_run_time(self):
        rid, = self.seed("Account", {"Name": "A"})
        self.admin("POST", "/schema/Account/fields", {"name": "Age_Days__c", "type": "double", "computed": True,
                                                      "createable": False, "updateable": False,
                                                      "calculatedFormula": "TODAY() - DATEVALUE(CreatedDate)"})
        describe = {f["name"]: f for f in self.api("GET", "/sobjects/Account/describe").json()["fields"]}
        self.assertTrue(describe["Age_Days__c"]["calculated"])
        self.admin("POST", "/records/Account/formula", {"field": "Age_Days__c", "value": 3})
        self.assertEqual(self.soql("SELECT Age_Days__c, SystemModstamp FROM Account")[0],
                         {"attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/Account/" + rid},
                          "Age_Days__c": 3.0, "SystemModstamp": "2025-11-01T00:00:00.000+0000"})


if __name__ == "__main__":
    unittest.main()
