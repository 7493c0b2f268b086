"""Item 3: processing against metadata and the store: job-level header failures, per-row error codes and
message format, #N/A vs empty, ids, upsert, update/delete/hardDelete, relationships, value parsing."""

import re
import unittest

from emu import EmuTestCase


class HeaderFailures(EmuTestCase):
    def assertJobFailed(self, obj, op, data, message, **kw):
        info = self.run_job(obj, op, data, **kw)
        self.assertEqual(info["state"], "Failed", info)
        self.assertEqual(info["errorMessage"], message)
        self.assertEqual(info["numberRecordsProcessed"], 0)
        self.assertEqual(self.results(info["id"], "failedResults"), [])
        self.assertEqual(self.results(info["id"], "successfulResults"), [])
        return info

    def test_unknown_field_fails_whole_job_naming_first_bad_column(self):
        self.config(shuffle_results=False)
        info = self.assertJobFailed("Account", "insert", "Name,Rating__cc,Other__c\nA,Hot,x\nB,Cold,y\n",
                                    "InvalidBatch : Field name not found : Rating__cc")
        un = self.api("GET", "/jobs/ingest/%s/unprocessedrecords" % info["id"])
        self.assertEqual(un.text, '"Name","Rating__cc","Other__c"\n"A","Hot","x"\n"B","Cold","y"')
        self.assertEqual(self.records("Account"), [])

    def test_bom_becomes_part_of_first_header(self):
        self.assertJobFailed("Account", "insert", "\ufeffName\nA\n", "InvalidBatch : Field name not found : \ufeffName")

    def test_header_case_insensitive(self):
        info = self.run_job("Account", "insert", "name,INDUSTRY\nA,Banking\n")
        self.assertEqual(info["state"], "JobComplete")
        self.assertEqual(self.records("Account")[0]["Industry"], "Banking")

    def test_line_ending_mismatch(self):
        self.assertJobFailed("Account", "insert", "Name\r\nA\r\n",
                             "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF")
        self.assertJobFailed("Account", "insert", "Name\nA\n",
                             "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is "
                             "CRLF", lineEnding="CRLF")
        ok = self.run_job("Account", "insert", 'Name,Description\r\nA,"multi\nline"\r\n', lineEnding="CRLF")
        self.assertEqual(ok["state"], "JobComplete")
        self.assertEqual(ok["numberRecordsFailed"], 0)
        ok = self.run_job("Account", "insert", 'Name,Description\nB,"has\r\ncrlf inside quotes"\n')
        self.assertEqual(ok["state"], "JobComplete")

    def test_relationship_header_errors(self):
        self.assertJobFailed("Contact", "insert", "LastName,Foo.External_Id__c\nA,x\n",
                             "InvalidBatch : Unable to find relationship: Foo")
        self.assertJobFailed("Contact", "insert", "LastName,Account:Account.External_Id__c\nA,x\n",
                             "InvalidBatch : type is not needed for non polymorphic foreign key references: Account")

    def test_invalid_utf8(self):
        info = self.run_job("Account", "insert", b"Name\n\xff\xfe\n")
        self.assertEqual(info["state"], "Failed")
        self.assertTrue(info["errorMessage"].startswith("InvalidBatch : "))


class RowErrors(EmuTestCase):
    def setUp(self):
        super().setUp()
        self.config(shuffle_results=False)

    def errors(self, obj, op, data, **kw):
        info = self.run_job(obj, op, data, **kw)
        self.assertEqual(info["state"], "JobComplete", info)
        return info, self.results(info["id"], "failedResults")

    def test_row_error_codes_and_formats(self):
        data = ("LastName,Company,Email,Region__c,Interests__c,NumberOfEmployees,AnnualRevenue,Birthdate__c,"
                "Last_Activity__c,HasOptedOutOfEmail,Title\n"
                ",Acme,,,,,,,,,\n"                                   # 0 required missing
                "L1,,,,,,,,,,\n"                                     # 1 required Company missing
                "L2,Acme,not-an-email,,,,,,,,\n"                     # 2 email
                "L3,Acme,,Mars,,,,,,,\n"                             # 3 restricted picklist
                "L4,Acme,,,Bulk;Cooking,,,,,,\n"                     # 4 restricted multi-picklist
                "L5,Acme,,,,abc,,,,,\n"                              # 5 int syntax
                "L6,Acme,,,,12.5,,,,,\n"                             # 6 int given decimal
                "L7,Acme,,,,,1e5,,,,\n"                              # 7 currency syntax
                "L8,Acme,,,,,,2003-04-31,,,\n"                       # 8 bad date
                "L9,Acme,,,,,,,2025-13-01T00:00:00Z,,\n"             # 9 bad datetime
                "L10,Acme,,,,,,,,yes,\n"                             # 10 bad boolean
                "L11,Acme,,,,,,,,," + "T" * 129 + "\n"               # 11 too long
                "L12,Acme,ok@example.org,EMEA,Bulk;Analytics,12,1000,2003-04-30,2025-11-04T16:20:07.000+02:00,1,CEO\n"
                ",,,,,,,,,,\n")                                      # 13 two required fields
        info, failed = self.errors("Lead", "insert", data)
        self.assertEqual(info["numberRecordsProcessed"], 14)
        self.assertEqual(info["numberRecordsFailed"], 13)
        errs = [r["sf__Error"] for r in failed]
        self.assertEqual(errs, [
            "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
            "REQUIRED_FIELD_MISSING:Required fields are missing: [Company]:Company --",
            "INVALID_EMAIL_ADDRESS:Email: invalid email address: not-an-email:Email --",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Region: bad value for restricted picklist field: Mars:Region__c --",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Interests: bad value for restricted picklist field: Cooking:"
            "Interests__c --",
            "INVALID_FIELD:Failed to deserialize field at col 5. Due to, 'abc' is not a valid value for the type "
            "xsd:int:NumberOfEmployees --",
            "INVALID_TYPE_ON_FIELD_IN_RECORD:Employees: value not of required type: 12.5:NumberOfEmployees --",
            "INVALID_FIELD:Failed to deserialize field at col 6. Due to, '1e5' is not a valid value for the type "
            "xsd:double:AnnualRevenue --",
            "INVALID_FIELD:Failed to deserialize field at col 7. Due to, '2003-04-31' is not a valid value for the "
            "type xsd:date:Birthdate__c --",
            "INVALID_FIELD:Failed to deserialize field at col 8. Due to, '2025-13-01T00:00:00Z' is not a valid "
            "value for the type xsd:dateTime:Last_Activity__c --",
            "INVALID_TYPE_ON_FIELD_IN_RECORD:Email Opt Out: value not of required type: yes:HasOptedOutOfEmail --",
            "STRING_TOO_LONG:Title: data value too large: %s (max length=128):Title --" % ("T" * 129),
            "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName, Company]:LastName,Company --",
        ])
        for e in errs:
            self.assertRegex(e, r"^[A-Z_]+:.*(:--|:[A-Za-z_,]+ --)$")
        rec = [r for r in self.records("Lead") if r["LastName"] == "L12"][0]
        self.assertEqual(rec["Last_Activity__c"], "2025-11-04T14:20:07.000Z")
        self.assertEqual(rec["HasOptedOutOfEmail"], "true")
        self.assertEqual(rec["Interests__c"], "Bulk;Analytics")
        self.assertEqual(rec["Status"], "Open - Not Contacted")  # default applied

    def test_value_parsing_accepts_salesforce_forms(self):
        data = ("LastName,Company,HasOptedOutOfEmail,Last_Activity__c,Score__c,Birthdate__c\n"
                "A,C,true,2025-11-04T16:20:07.000Z,1.5e2,2024-02-29\n"
                "B,C,FALSE,2025-11-04T16:20:07Z,-3,2000-01-01\n"
                "C,C,0,2025-11-04T16:20:07.123-05:00,.5,1999-12-31\n"
                "D,C,True,2025-11-04T16:20:07,7,2023-02-28\n")
        info, failed = self.errors("Lead", "insert", data)
        self.assertEqual(failed, [])
        recs = {r["LastName"]: r for r in self.records("Lead")}
        self.assertEqual(recs["A"]["HasOptedOutOfEmail"], "true")
        self.assertEqual(recs["B"]["HasOptedOutOfEmail"], "false")
        self.assertEqual(recs["C"]["HasOptedOutOfEmail"], "false")
        self.assertEqual(recs["C"]["Last_Activity__c"], "2025-11-04T21:20:07.123Z")
        self.assertEqual(recs["A"]["Score__c"], "150.00")

    def test_insert_ids_prefix_and_checksum(self):
        info, _ = self.errors("Contact", "insert", "LastName\nA\nB\n")
        ok = self.results(info["id"], "successfulResults")
        for r in ok:
            self.assertRegex(r["sf__Id"], r"^003[0-9A-Za-z]{15}$")
            self.assertEqual(r["sf__Created"], "true")
        import sys, os
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from sf_emulator.common import to18
        for r in ok:
            self.assertEqual(to18(r["sf__Id"][:15]), r["sf__Id"])
        info, _ = self.errors("Lead", "insert", "LastName,Company\nA,B\n")
        self.assertTrue(self.results(info["id"], "successfulResults")[0]["sf__Id"].startswith("00Q"))

    def test_insert_with_id_or_readonly_field(self):
        _, failed = self.errors("Account", "insert", "Id,Name\n001Em0000000001AAA,A\n")
        self.assertEqual(failed[0]["sf__Error"], "INVALID_FIELD_FOR_INSERT_UPDATE:cannot specify Id in an insert "
                                                 "call:Id --")
        _, failed = self.errors("Lead", "insert", "LastName,Company,IsConverted\nA,B,true\n")
        self.assertTrue(failed[0]["sf__Error"].startswith("INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update "
                                                          "fields: IsConverted."))

    def test_na_clears_and_empty_keeps(self):
        info, _ = self.errors("Contact", "insert", "LastName,Email,Title,External_Id__c\nOkafor,a@x.org,CEO,K1\n")
        rid = self.results(info["id"], "successfulResults")[0]["sf__Id"]
        _, failed = self.errors("Contact", "update", "Id,Email,Title\n%s,#N/A,\n" % rid)
        self.assertEqual(failed, [])
        rec = self.records("Contact")[0]
        self.assertNotIn("Email", rec)
        self.assertEqual(rec["Title"], "CEO")
        _, failed = self.errors("Contact", "update", "Id,LastName\n%s,#N/A\n" % rid)
        self.assertEqual(failed[0]["sf__Error"],
                         "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --")
        self.assertEqual(failed[0]["sf__Id"], rid)
        # #N/A on insert sets null: the default does not apply
        self.errors("Lead", "insert", "LastName,Company,Status\nX,Y,#N/A\n")
        self.assertNotIn("Status", self.records("Lead")[0])

    def test_upsert_creates_then_updates(self):
        info, _ = self.errors("Contact", "upsert", "External_Id__c,LastName,Title\nK1,A,t1\nK2,B,t2\n",
                              externalIdFieldName="External_Id__c")
        ok = {r["External_Id__c"]: r for r in self.results(info["id"], "successfulResults")}
        self.assertEqual((ok["K1"]["sf__Created"], ok["K2"]["sf__Created"]), ("true", "true"))
        info, _ = self.errors("Contact", "upsert", "External_Id__c,LastName,Title\nk1,A2,\nK3,C,t3\n",
                              externalIdFieldName="External_Id__c")
        ok2 = {r["External_Id__c"]: r for r in self.results(info["id"], "successfulResults")}
        self.assertEqual(ok2["k1"]["sf__Created"], "false")  # external ids match case-insensitively
        self.assertEqual(ok2["k1"]["sf__Id"], ok["K1"]["sf__Id"])
        self.assertEqual(ok2["K3"]["sf__Created"], "true")
        recs = {r["External_Id__c"]: r for r in self.records("Contact")}
        self.assertEqual((recs["k1"]["LastName"], recs["k1"]["Title"]), ("A2", "t1"))
        self.assertEqual(len(recs), 3)

    def test_upsert_errors(self):
        _, failed = self.errors("Contact", "upsert", "External_Id__c,LastName\n,A\nD1,B\nd1,C\nD2,D\n",
                                externalIdFieldName="External_Id__c")
        errs = sorted(r["sf__Error"] for r in failed)
        self.assertEqual(errs, ["DUPLICATE_EXTERNAL_ID:Duplicate external id specified: D1:External_Id__c --",
                                "DUPLICATE_EXTERNAL_ID:Duplicate external id specified: d1:External_Id__c --",
                                "MISSING_ARGUMENT:External_Id__c not specified:--"])
        # upsert by Id
        info, _ = self.errors("Account", "insert", "Name\nA\n")
        rid = self.results(info["id"], "successfulResults")[0]["sf__Id"]
        info, failed = self.errors("Account", "upsert", "Id,Name\n%s,A2\n,New\n" % rid[:15],
                                   externalIdFieldName="Id")
        self.assertEqual(failed, [])
        names = sorted(r["Name"] for r in self.records("Account"))
        self.assertEqual(names, ["A2", "New"])

    def test_duplicate_value_on_unique_field(self):
        info, _ = self.errors("Account", "insert", "Name,External_Id__c\nA,E1\n")
        rid = self.results(info["id"], "successfulResults")[0]["sf__Id"]
        _, failed = self.errors("Account", "insert", "Name,External_Id__c\nB,e1\n")
        self.assertEqual(failed[0]["sf__Error"],
                         "DUPLICATE_VALUE:duplicate value found: External_Id__c duplicates value on record with id: "
                         "%s:--" % rid)

    def test_insert_duplicate_external_id_within_file(self):
        _, failed = self.errors("Account", "insert", "Name,External_Id__c\nA,E7\nB,e7\n")
        self.assertEqual(len(failed), 1)
        self.assertTrue(failed[0]["sf__Error"].startswith("DUPLICATE_VALUE:duplicate value found: External_Id__c "
                                                          "duplicates value on record with id: 001"))

    def test_update_delete_harddelete_by_id(self):
        info, _ = self.errors("Account", "insert", "Name\nA\nB\nC\n")
        ids = {r["Name"]: r["sf__Id"] for r in self.results(info["id"], "successfulResults")}
        info, failed = self.errors("Account", "update", "Id,Name,NumberOfEmployees\n%s,A2,5\n%s,,7\n"
                                   % (ids["A"], ids["B"].lower()))
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]["sf__Error"], "MALFORMED_ID:Account ID: id value of incorrect type: %s:Id --"
                         % ids["B"].lower())
        ok = self.results(info["id"], "successfulResults")
        self.assertEqual([(r["sf__Id"], r["sf__Created"]) for r in ok], [(ids["A"], "false")])
        recs = {r["Id"]: r for r in self.records("Account")}
        self.assertEqual((recs[ids["A"]]["Name"], recs[ids["A"]]["NumberOfEmployees"]), ("A2", "5"))
        # delete (soft), then errors on deleted / unknown / wrong object / malformed ids
        info, failed = self.errors("Account", "delete", "Id\n%s\n" % ids["A"][:15])
        self.assertEqual(failed, [])
        self.assertEqual(self.results(info["id"], "successfulResults")[0]["sf__Id"], ids["A"])
        unknown = ids["C"][:9] + "zzzzzz"
        _, failed = self.errors("Account", "update", "Id,Name\n%s,X\n%s,Y\n003Em0000000001IAA,Z\nbad,W\n,V\n"
                                % (ids["A"], unknown))
        self.assertEqual([r["sf__Error"] for r in failed], [
            "ENTITY_IS_DELETED:entity is deleted:--",
            "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--",
            "MALFORMED_ID:Account ID: id value of incorrect type: 003Em0000000001IAA:Id --",
            "MALFORMED_ID:Account ID: id value of incorrect type: bad:Id --",
            "MISSING_ARGUMENT:Id not specified in an update call:--"])
        self.assertEqual(failed[0]["sf__Id"], ids["A"])
        _, failed = self.errors("Account", "delete", "Id\n%s\n" % ids["A"])
        self.assertEqual(failed[0]["sf__Error"], "ENTITY_IS_DELETED:entity is deleted:--")
        # hardDelete removes the record entirely
        _, failed = self.errors("Account", "hardDelete", "Id\n%s\n" % ids["C"])
        self.assertEqual(failed, [])
        self.assertNotIn(ids["C"], [r["Id"] for r in self.records("Account")])

    def test_relationship_columns_resolve_through_store(self):
        info, _ = self.errors("Account", "insert", "Name,External_Id__c\nAcme,ACC-1\n")
        acc = self.results(info["id"], "successfulResults")[0]["sf__Id"]
        _, failed = self.errors("Contact", "insert",
                                "LastName,Account.External_Id__c,External_Id__c\nA,ACC-1,C1\nB,ACC-9,C2\nC,#N/A,C3\n")
        self.assertEqual([r["sf__Error"] for r in failed],
                         ["INVALID_FIELD:Foreign key external ID: ACC-9 not found for field External_Id__c in entity "
                          "Account:--"])
        recs = {r["LastName"]: r for r in self.records("Contact")}
        self.assertEqual(recs["A"]["AccountId"], acc)
        self.assertNotIn("AccountId", recs["C"])
        # self-relationship and idLookup field (Email) on Contact
        self.errors("Contact", "update", "Id,Email\n%s,boss@x.org\n" % recs["A"]["Id"])
        _, failed = self.errors("Contact", "upsert", "External_Id__c,ReportsTo.Email\nC2x,boss@x.org\n"
                                "C3,boss@x.org\n", externalIdFieldName="External_Id__c")
        self.assertEqual([r["sf__Error"] for r in failed], [
            "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"])
        recs = {r["LastName"]: r for r in self.records("Contact")}
        self.assertEqual(recs["C"]["ReportsToId"], recs["A"]["Id"])
        # polymorphic owner with a type prefix
        _, failed = self.errors("Lead", "insert", "LastName,Company,Owner:User.Username\nA,B,etl@sfbulk.emulator\n")
        self.assertEqual(failed, [])

    def test_lookup_by_id_errors(self):
        info, _ = self.errors("Account", "insert", "Name\nAcme\n")
        acc = self.results(info["id"], "successfulResults")[0]["sf__Id"]
        _, failed = self.errors("Contact", "insert", "LastName,AccountId\nA,%s\nB,xyz\nC,003Em0000000009IAA\n"
                                "D,%s\n" % (acc, acc[:9] + "zzzzzz"))
        self.assertEqual([r["sf__Error"] for r in failed], [
            "MALFORMED_ID:Account ID: id value of incorrect type: xyz:AccountId --",
            "FIELD_INTEGRITY_EXCEPTION:Account ID: id value of incorrect type: 003Em0000000009IAA:AccountId --",
            "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"])
        self.errors("Account", "delete", "Id\n%s\n" % acc)
        _, failed = self.errors("Contact", "insert", "LastName,AccountId\nE,%s\n" % acc)
        self.assertEqual(failed[0]["sf__Error"], "ENTITY_IS_DELETED:entity is deleted:--")

    def test_csv_rules(self):
        data = ('Name,Description\n"Quote ""q""","a,b"\n"  spaced  ",x\n"bad" ,y\nonly-one-col\nTwo,\n')
        info, failed = self.errors("Account", "insert", data)
        self.assertEqual(info["numberRecordsProcessed"], 5)
        recs = sorted(r["Name"] for r in self.records("Account"))
        self.assertEqual(recs, ["  spaced  ", "Quote \"q\"", "Two"])
        self.assertEqual(len(failed), 2)
        for f in failed:
            self.assertTrue(f["sf__Error"].startswith("INVALID_FIELD:"), f)

    def test_other_delimiters(self):
        for name, d in (("TAB", "\t"), ("PIPE", "|"), ("SEMICOLON", ";"), ("CARET", "^"), ("BACKQUOTE", "`")):
            with self.subTest(delim=name):
                data = "Name%sDescription\nA%s\"x%sy\"\n" % (d, d, d)
                info = self.run_job("Account", "insert", data, columnDelimiter=name)
                self.assertEqual(info["numberRecordsFailed"], 0)
                rows = self.results(info["id"], "successfulResults", delimiter=d)
                self.assertEqual(rows[0]["Description"], "x%sy" % d)
                r = self.api("GET", "/jobs/ingest/%s/successfulResults" % info["id"])
                self.assertTrue(r.text.startswith('"sf__Id"%s"sf__Created"' % d))

    def test_lock_failure_fraction(self):
        self.config(lock_failure_fraction=0.3)
        data = "Name\n" + "".join("A%d\n" % i for i in range(200))
        info, failed = self.errors("Account", "insert", data)
        self.assertTrue(20 < len(failed) < 100, len(failed))
        for f in failed:
            self.assertEqual(f["sf__Error"], "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--")
        self.assertEqual(len(self.records("Account")), 200 - len(failed))
        self.assertEqual(info["numberRecordsProcessed"], 200)

    def test_partial_success_counts(self):
        info, failed = self.errors("Contact", "insert", "LastName\nA\n\n,\nB\n")
        self.assertEqual(info["numberRecordsProcessed"], info["numberRecordsFailed"] +
                         len(self.results(info["id"], "successfulResults")))


if __name__ == "__main__":
    unittest.main()
