"""Describe against docs/soql-and-rest.md §3 and §6 "Describe": the describeGlobal entry of §3.1, every field
property of §3.2 with the per-type flags and recorded values, child relationships, compound fields, conditional
requests (§3.4), and a schema that changes at run time (admin /__emulator/schema)."""

import email.utils
import time
import unittest

from emu import EmuTestCase


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)

# docs/soql-and-rest.md §3.1, the Account entry (member order as recorded)
ACCOUNT_GLOBAL = {"activateable": False, "createable": True, "custom": False, "customSetting": False,
                  "deletable": True, "deprecatedAndHidden": False, "feedEnabled": True, "keyPrefix": "001",
                  "label": "Account", "labelPlural": "Accounts", "layoutable": True, "mergeable": True,
                  "name": "Account", "queryable": True, "replicateable": True, "retrieveable": True,
                  "searchable": True, "triggerable": True, "undeletable": True, "updateable": True,
                  "urls": {"sobject": "/services/data/v62.0/sobjects/Account",
                           "describe": "/services/data/v62.0/sobjects/Account/describe",
                           "rowTemplate": "/services/data/v62.0/sobjects/Account/{ID}"}}

# every field property docs/soql-and-rest.md §3.2 lists
FIELD_PROPERTIES = {"name", "label", "custom", "type", "soapType", "length", "byteLength", "precision", "scale",
                    "digits", "nillable", "createable", "updateable", "defaultedOnCreate", "defaultValue",
                    "externalId", "idLookup", "unique", "caseSensitive", "nameField", "autoNumber", "calculated",
                    "calculatedFormula", "filterable", "sortable", "groupable", "aggregatable", "referenceTo",
                    "relationshipName", "namePointing", "polymorphicForeignKey", "picklistValues",
                    "restrictedPicklist", "dependentPicklist", "compoundFieldName", "encrypted", "htmlFormatted",
                    "deprecatedAndHidden"}


class DescribeShape(EmuTestCase):
    def fields(self, obj):
        r = self.api("GET", "/sobjects/%s/describe" % obj)
        self.assertEqual(r.status, 200, r.text)
        return {f["name"]: f for f in r.json()["fields"]}

    def test_describe_global_entry_is_the_recorded_shape(self):
        body = self.api("GET", "/sobjects").json()
        self.assertEqual((body["encoding"], body["maxBatchSize"]), ("UTF-8", 200))
        entry = next(o for o in body["sobjects"] if o["name"] == "Account")
        self.assertEqual(list(entry), list(ACCOUNT_GLOBAL))
        self.assertEqual(entry, ACCOUNT_GLOBAL)
        invoice = next(o for o in body["sobjects"] if o["name"] == "Invoice__c")
        self.assertEqual((invoice["custom"], invoice["keyPrefix"]), (True, "a01"))

    def test_object_describe_adds_fields_and_relationships(self):
        d = self.api("GET", "/sobjects/Account/describe").json()
        self.assertEqual(list(d)[:len(ACCOUNT_GLOBAL)], list(ACCOUNT_GLOBAL))
        self.assertEqual({k: d[k] for k in ACCOUNT_GLOBAL}, ACCOUNT_GLOBAL)
        self.assertEqual(list(d)[len(ACCOUNT_GLOBAL):], ["fields", "childRelationships", "recordTypeInfos"])
        children = {(c["childSObject"], c["field"]): c for c in d["childRelationships"]}
        self.assertEqual(children[("Contact", "AccountId")],
                         {"cascadeDelete": False, "childSObject": "Contact", "deprecatedAndHidden": False,
                          "field": "AccountId", "relationshipName": "Contacts"})
        self.assertEqual(children[("Invoice__c", "Account__c")]["relationshipName"], "Invoices__r")
        self.assertEqual(children[("Account", "ParentId")]["relationshipName"], "ChildAccounts")

    def test_every_field_has_every_property_in_alphabetical_order(self):
        for obj in ("Account", "Contact", "Lead", "User", "Organization", "Group", "Invoice__c"):
            d = self.api("GET", "/sobjects/%s/describe" % obj).json()
            for f in d["fields"]:
                self.assertTrue(FIELD_PROPERTIES.issubset(f), (obj, f["name"], FIELD_PROPERTIES - set(f)))
                self.assertEqual(list(f), sorted(f), (obj, f["name"]))
                self.assertEqual(f["byteLength"], 3 * f["length"], (obj, f["name"]))

    def test_recorded_values(self):
        acc, lead, inv = self.fields("Account"), self.fields("Lead"), self.fields("Invoice__c")
        self.assertEqual({k: acc["Id"][k] for k in ("type", "idLookup", "caseSensitive", "length", "byteLength",
                                                    "soapType")},
                         {"type": "id", "idLookup": True, "caseSensitive": False, "length": 18, "byteLength": 54,
                          "soapType": "tns:ID"})
        for owner in (lead["OwnerId"], inv["OwnerId"]):
            self.assertEqual((owner["referenceTo"], owner["namePointing"], owner["polymorphicForeignKey"]),
                             (["Group", "User"], True, True))
        self.assertEqual((acc["OwnerId"]["namePointing"], acc["OwnerId"]["length"]), (False, 18))
        for name in ("CreatedDate", "SystemModstamp"):
            self.assertEqual((acc[name]["type"], acc[name]["soapType"], acc[name]["groupable"]),
                             ("datetime", "xsd:dateTime", False))
        self.assertEqual((inv["Name"]["autoNumber"], inv["Name"]["groupable"], inv["Name"]["nameField"],
                          inv["Name"]["createable"]), (True, False, True, False))
        q = inv["Quantity__c"]
        self.assertEqual((q["type"], q["precision"], q["scale"], q["digits"], q["length"], q["groupable"]),
                         ("double", 18, 0, 0, 0, False))
        for name in ("Amount__c", "Tax_Rate__c"):
            self.assertFalse(inv[name]["groupable"])
            self.assertTrue(inv[name]["filterable"] and inv[name]["sortable"])
        notes = inv["Notes__c"]
        self.assertEqual((notes["length"], notes["filterable"], notes["sortable"], notes["groupable"]),
                         (32768, False, False, False))
        memo = inv["Memo__c"]  # short text area: no restriction
        self.assertEqual((memo["length"], memo["filterable"], memo["sortable"]), (255, True, True))
        ch = inv["Channels__c"]
        self.assertEqual((ch["length"], ch["filterable"], ch["sortable"], ch["groupable"]), (4099, True, False, False))
        self.assertEqual(self.fields("Lead")["Interests__c"]["length"], 4099)  # the type's default length
        emp = acc["NumberOfEmployees"]
        self.assertEqual((emp["type"], emp["soapType"], emp["digits"], emp["precision"], emp["groupable"]),
                         ("int", "xsd:int", 8, 0, True))
        total = inv["Total_With_Tax__c"]
        self.assertEqual((total["calculated"], total["calculatedFormula"], total["type"], total["createable"]),
                         (True, "Amount__c * (1 + Tax_Rate__c)", "currency", False))
        key = inv["Invoice_Key__c"]
        self.assertEqual((key["externalId"], key["unique"], key["caseSensitive"], key["idLookup"]),
                         (True, True, True, True))
        self.assertEqual((inv["Status__c"]["defaultValue"], inv["Status__c"]["defaultedOnCreate"]), ("Draft", True))
        self.assertEqual([p for p in inv["Status__c"]["picklistValues"] if p["defaultValue"]],
                         [{"active": True, "defaultValue": True, "label": "Draft", "validFor": None,
                           "value": "Draft"}])
        self.assertEqual((acc["Name"]["custom"], inv["Amount__c"]["custom"]), (False, True))

    def test_every_type_with_its_soap_type(self):
        """docs/soql-and-rest.md §6 "Describe": the types the fixture must cover."""
        inv, acc, con = self.fields("Invoice__c"), self.fields("Account"), self.fields("Contact")
        seen = {}
        for fields in (inv, acc, con):
            for f in fields.values():
                seen.setdefault(f["type"], f["soapType"])
        self.assertEqual(seen, {"id": "tns:ID", "reference": "tns:ID", "string": "xsd:string",
                                "textarea": "xsd:string", "picklist": "xsd:string", "multipicklist": "xsd:string",
                                "boolean": "xsd:boolean", "int": "xsd:int", "double": "xsd:double",
                                "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date",
                                "datetime": "xsd:dateTime", "time": "xsd:time", "email": "xsd:string",
                                "phone": "xsd:string", "url": "xsd:string", "address": "urn:address",
                                "location": "urn:location", "base64": "xsd:base64Binary"})
        for name in ("Site__c", "Scan__c"):
            self.assertEqual((inv[name]["filterable"], inv[name]["sortable"], inv[name]["groupable"],
                              inv[name]["aggregatable"]), (False, False, False, False), name)

    def test_compound_address_and_its_components(self):
        acc = self.fields("Account")
        for part in ("BillingStreet", "BillingCity", "BillingState", "BillingPostalCode", "BillingCountry"):
            self.assertEqual(acc[part]["compoundFieldName"], "BillingAddress", part)
        addr = acc["BillingAddress"]
        self.assertEqual((addr["type"], addr["soapType"], addr["length"], addr["createable"], addr["updateable"],
                          addr["filterable"], addr["compoundFieldName"]),
                         ("address", "urn:address", 0, False, False, False, None))
        self.assertIsNone(acc["Name"]["compoundFieldName"])

    def test_inactive_picklist_values_listed_inactive(self):
        rating = self.fields("Account")["Rating"]["picklistValues"]
        self.assertEqual([(p["value"], p["active"]) for p in rating],
                         [("Hot", True), ("Warm", True), ("Cold", True), ("Frozen", False)])
        # old data may hold an inactive value of an unrestricted picklist
        info = self.run_job("Account", "insert", "Name,Rating\nA,Frozen\n")
        self.assertEqual((info["numberRecordsProcessed"], info["numberRecordsFailed"]), (1, 0))

    def test_bulk_query_refuses_compound_fields_of_the_schema(self):
        for soql in ("SELECT Id, BillingAddress FROM Account", "SELECT Site__c FROM Invoice__c",
                     "SELECT Id FROM Contact WHERE Account.BillingAddress != null"):
            r = self.api("POST", "/jobs/query", {"operation": "query", "query": soql})
            self.assertApiError(r, 400, "API_ERROR", "Selecting compound data not supported in Bulk Query")
        self.assertEqual(self.query_rows("SELECT BillingCity FROM Account"), [])

    def test_custom_object_round_trip(self):
        self.config(shuffle_results=False)
        acc = self.run_job("Account", "insert", "Name,External_Id__c\nAcme,A1\n")
        self.assertEqual(acc["numberRecordsFailed"], 0)
        info = self.run_job("Invoice__c", "insert", "Invoice_Key__c,Account__r.External_Id__c,Amount__c,"
                                                    "Channels__c,Due_Date__c\nK-1,A1,12.5,Email;Portal,2026-01-31\n")
        self.assertEqual(info["numberRecordsFailed"], 0, self.results(info["id"], "failedResults"))
        rows = self.query_rows("SELECT Name, Invoice_Key__c, Status__c, Amount__c, Account__r.Name, Channels__c "
                               "FROM Invoice__c")
        self.assertEqual(rows, [{"Name": "INV-0001", "Invoice_Key__c": "K-1", "Status__c": "Draft",
                                 "Amount__c": "12.50", "Account__r.Name": "Acme", "Channels__c": "Email;Portal"}])

    def test_auto_number_in_insert_order(self):
        info = self.run_job("Invoice__c", "insert", "Invoice_Key__c\nK-1\nK-2\n")
        self.assertEqual(info["numberRecordsFailed"], 0)
        self.admin("POST", "/records/Invoice__c", [{"Invoice_Key__c": "K-3"},
                                                   {"Name": "Kept", "Invoice_Key__c": "K-4"}])
        self.admin("POST", "/records/Invoice__c", {"generate": {"count": 2, "values": {"Invoice_Key__c": "G-{n}"}}})
        self.assertEqual(sorted((r["Invoice_Key__c"], r["Name"]) for r in self.records("Invoice__c")),
                         [("G-1", "INV-0005"), ("G-2", "INV-0006"), ("K-1", "INV-0001"), ("K-2", "INV-0002"),
                          ("K-3", "INV-0003"), ("K-4", "Kept")])
        info = self.run_job("Invoice__c", "insert", "Name,Invoice_Key__c\nMine,K-5\n")
        self.assertEqual(info["numberRecordsFailed"], 1)  # not createable
        self.admin("POST", "/reset")
        self.run_job("Invoice__c", "insert", "Invoice_Key__c\nK-1\n")
        self.assertEqual([r["Name"] for r in self.records("Invoice__c")], ["INV-0001"])


class CompoundValues(EmuTestCase):
    """docs/soql-and-rest.md §1.4, §2.9: REST answers an address as an object of its components; Bulk refuses it."""
    ADDRESS = {"city": "Oslo", "country": "Norway", "geocodeAccuracy": None, "latitude": None, "longitude": None,
               "postalCode": "0150", "state": None, "street": "Karl Johans gate 1"}

    def setUp(self):
        super().setUp()
        ids = self.admin("POST", "/records/Account", [
            {"Name": "Nordic", "External_Id__c": "N", "BillingStreet": "Karl Johans gate 1", "BillingCity": "Oslo",
             "BillingPostalCode": "0150", "BillingCountry": "Norway"},
            {"Name": "Nowhere", "External_Id__c": "X"}])["ids"]
        self.nordic = ids[0]
        self.admin("POST", "/records/Contact", [{"LastName": "Hansen", "AccountId": ids[0]},
                                                {"LastName": "Solo"}])

    def rest(self, soql):
        r = self.api("GET", "/query?q=" + soql.replace(" ", "+"))
        self.assertEqual(r.status, 200, r.text)
        return r.json()["records"]

    def test_rest_query_address_object(self):
        recs = self.rest("SELECT Name, BillingAddress FROM Account ORDER BY Name")
        self.assertEqual([(r["Name"], r["BillingAddress"]) for r in recs],
                         [("Nordic", self.ADDRESS), ("Nowhere", None)])
        self.assertEqual(list(recs[0]["BillingAddress"]), sorted(self.ADDRESS))
        recs = self.rest("SELECT LastName, Account.BillingAddress FROM Contact WHERE Account.Name = 'Nordic'")
        self.assertEqual(recs[0]["Account"]["BillingAddress"], self.ADDRESS)
        self.admin("POST", "/records/Invoice__c", [{"Invoice_Key__c": "K-1"}])
        recs = self.rest("SELECT Name, Site__c FROM Invoice__c")
        self.assertEqual([(r["Name"], r["Site__c"]) for r in recs], [("INV-0001", None)])

    def test_record_by_id_carries_the_address(self):
        r = self.api("GET", "/sobjects/Account/" + self.nordic).json()
        self.assertEqual((r["BillingAddress"], r["BillingCity"]), (self.ADDRESS, "Oslo"))

    def test_compound_not_filtered_or_sorted(self):
        for soql in ("SELECT Name FROM Account WHERE BillingAddress != null",
                     "SELECT Name FROM Account ORDER BY BillingAddress"):
            self.assertEqual(self.api("GET", "/query?q=" + soql.replace(" ", "+")).status, 400, soql)


class ConditionalDescribe(EmuTestCase):
    """docs/soql-and-rest.md §3.4: both describes answer 304 without a body while the metadata is not newer than
    If-Modified-Since."""
    RESOURCES = ("/sobjects", "/sobjects/Account/describe")

    def test_not_modified_since_now(self):
        for path in self.RESOURCES:
            r = self.api("GET", path, headers={"If-Modified-Since": http_date(time.time() + 1)})
            self.assertEqual((r.status, r.raw), (304, b""), path)
            self.assertIsNone(r.headers.get("Content-Type"))
            self.assertRegex(r.headers["Sforce-Limit-Info"], r"^api-usage=\d+/15000$")

    def test_modified_since_an_older_date(self):
        for path in self.RESOURCES:
            for since in ("Mon, 30 Nov 2020 08:34:54 MST", "Mon, 30 Nov 2020 15:34:54 GMT",
                          "Mon, 30 Nov 2020 15:34:54 -0000"):
                r = self.api("GET", path, headers={"If-Modified-Since": since})
                self.assertEqual(r.status, 200, (path, since))
                self.assertIn("fields" if "describe" in path else "sobjects", r.json())

    def test_unparsable_date_is_ignored(self):
        for path in self.RESOURCES:
            self.assertEqual(self.api("GET", path, headers={"If-Modified-Since": "yesterday"}).status, 200)

    def test_if_unmodified_since(self):
        for path in self.RESOURCES:
            self.assertEqual(self.api("GET", path, headers={"If-Unmodified-Since": http_date(time.time() + 1)})
                             .status, 200)
            r = self.api("GET", path, headers={"If-Unmodified-Since": "Mon, 30 Nov 2020 08:34:54 MST"})
            self.assertApiError(r, 412, "PRECONDITION_FAILED")
            # evaluated before If-Modified-Since
            r = self.api("GET", path, headers={"If-Unmodified-Since": "Mon, 30 Nov 2020 08:34:54 MST",
                                               "If-Modified-Since": http_date(time.time() + 1)})
            self.assertEqual(r.status, 412)


class SchemaChanges(EmuTestCase):
    """docs/soql-and-rest.md §6 "Describe": add, drop and retype a field between calls."""

    def setUp(self):
        super().setUp()
        self.config(shuffle_results=False)

    def current(self):
        """An If-Modified-Since date not older than any describe (after an edit and a reset the stamps may lie a
        little in the future)."""
        return self.admin("GET", "/schema")["modified_http_date"]

    def put_field(self, obj, field):
        return self.admin("POST", "/schema/%s/fields" % obj, field)

    def describe(self, obj="Account", since=None):
        return self.api("GET", "/sobjects/%s/describe" % obj,
                        headers={"If-Modified-Since": since} if since else None)

    def field_names(self, obj="Account"):
        return [f["name"] for f in self.describe(obj).json()["fields"]]

    def test_added_field_in_describe_ingest_and_query(self):
        before = self.current()
        self.assertEqual(self.describe(since=before).status, 304)
        self.assertEqual(self.api("GET", "/sobjects", headers={"If-Modified-Since": before}).status, 304)
        out = self.put_field("Account", {"name": "Segment__c", "label": "Segment", "type": "picklist",
                                         "picklistValues": ["SMB", "Enterprise"], "restrictedPicklist": True})
        self.assertEqual((out["object"], out["created"], out["field"]["name"], out["field"]["restrictedPicklist"]),
                         ("Account", True, "Segment__c", True))
        self.assertEqual(list(out), ["object", "created", "field", "modified", "modified_http_date"])
        self.assertRegex(out["modified"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$")
        r = self.describe(since=before)
        self.assertEqual(r.status, 200)
        fields = {f["name"]: f for f in r.json()["fields"]}
        self.assertEqual(fields["Segment__c"], out["field"])
        self.assertEqual(self.field_names()[-1], "Segment__c")
        self.assertEqual(self.api("GET", "/sobjects", headers={"If-Modified-Since": before}).status, 200)
        # the stamp the admin API reports is the one a cached describe needs for a 304
        self.assertEqual(self.describe(since=out["modified_http_date"]).status, 304)
        self.assertEqual(self.describe("Lead", since=before).status, 304)  # other objects keep their stamp
        info = self.run_job("Account", "insert", "Name,Segment__c\nA,SMB\nB,Mid\n")
        self.assertEqual((info["numberRecordsProcessed"], info["numberRecordsFailed"]), (2, 1))
        self.assertEqual(self.query_rows("SELECT Name, Segment__c FROM Account"), [{"Name": "A", "Segment__c": "SMB"}])

    def test_reference_field_changes_the_parents_describe(self):
        before = self.current()
        self.put_field("Lead", {"name": "Partner__c", "type": "reference", "referenceTo": ["Account"],
                                "relationshipName": "Partner__r", "childRelationshipName": "Referred_Leads__r"})
        r = self.describe("Account", since=before)
        self.assertEqual(r.status, 200)
        self.assertIn({"cascadeDelete": False, "childSObject": "Lead", "deprecatedAndHidden": False,
                       "field": "Partner__c", "relationshipName": "Referred_Leads__r"},
                      r.json()["childRelationships"])
        self.assertEqual(self.describe("Contact", since=before).status, 304)
        self.assertEqual(self.run_job("Account", "insert", "Name,External_Id__c\nAcme,A1\n")["numberRecordsFailed"],
                         0)
        info = self.run_job("Lead", "insert", "LastName,Company,Partner__r.External_Id__c\nOkafor,Farms,A1\n")
        self.assertEqual(info["numberRecordsFailed"], 0, self.results(info["id"], "failedResults"))
        self.assertEqual(self.query_rows("SELECT LastName, Partner__r.Name FROM Lead"),
                         [{"LastName": "Okafor", "Partner__r.Name": "Acme"}])
        stamp = self.admin("DELETE", "/schema/Lead/fields/Partner__c")["modified_http_date"]
        r = self.describe("Account", since=before)
        self.assertNotIn("Partner__c", [c["field"] for c in r.json()["childRelationships"]])
        self.assertEqual(self.describe("Account", since=stamp).status, 304)

    def test_retype_keeps_place_and_converts_values(self):
        names = self.field_names()
        self.admin("POST", "/records/Account", [{"Name": "A", "AccountNumber": "123"},
                                                {"Name": "B", "AccountNumber": "ABC"}])
        out = self.put_field("Account", {"name": "accountnumber", "label": "Account Number", "type": "int",
                                         "precision": 9})
        self.assertEqual((out["created"], out["field"]["name"], out["field"]["type"]), (False, "AccountNumber", "int"))
        self.assertEqual(self.field_names(), names)
        self.assertEqual({r["Name"]: r.get("AccountNumber") for r in self.records("Account")},
                         {"A": "123", "B": None})
        rest = self.api("GET", "/query?q=SELECT+Name,AccountNumber+FROM+Account+ORDER+BY+Name").json()
        self.assertEqual([r["AccountNumber"] for r in rest["records"]], [123, None])
        info = self.run_job("Account", "insert", "Name,AccountNumber\nC,x1\n")
        self.assertEqual(info["numberRecordsFailed"], 1)

    def test_retype_into_an_external_id_indexes_existing_records(self):
        self.admin("POST", "/records/Account", [{"Name": "A", "AccountNumber": "N1"}])
        self.put_field("Account", {"name": "AccountNumber", "type": "string", "length": 40, "externalId": True,
                                   "unique": True})
        info = self.run_job("Account", "upsert", "AccountNumber,Name\nn1,A2\nN2,B\n",
                            externalIdFieldName="AccountNumber")
        self.assertEqual((info["numberRecordsProcessed"], info["numberRecordsFailed"]), (2, 0))
        created = {r["AccountNumber"]: r["sf__Created"] for r in self.results(info["id"], "successfulResults")}
        self.assertEqual(created, {"n1": "false", "N2": "true"})
        self.assertEqual(sorted(r["Name"] for r in self.records("Account")), ["A2", "B"])

    def test_new_checkbox_is_false_on_existing_records(self):
        self.admin("POST", "/records/Account", [{"Name": "A"}])
        self.put_field("Account", {"name": "Vip__c", "type": "boolean"})
        self.assertEqual(self.query_rows("SELECT Name, Vip__c FROM Account"), [{"Name": "A", "Vip__c": "false"}])
        self.assertEqual(self.describe().json()["fields"][-1]["nillable"], False)

    def test_dropped_field_is_gone_everywhere(self):
        self.admin("POST", "/records/Account", [{"Name": "A", "AccountNumber": "123"}])
        before = self.current()
        out = self.admin("DELETE", "/schema/Account/fields/AccountNumber")
        self.assertEqual(list(out), ["object", "dropped", "modified", "modified_http_date"])
        self.assertEqual((out["object"], out["dropped"]), ("Account", "AccountNumber"))
        self.assertEqual(self.describe(since=before).status, 200)
        self.assertNotIn("AccountNumber", self.field_names())
        self.assertNotIn("AccountNumber", self.records("Account")[0])
        r = self.api("POST", "/jobs/query", {"operation": "query", "query": "SELECT AccountNumber FROM Account"})
        self.assertApiError(r, 400, "INVALID_FIELD")
        self.assertEqual(self.api("GET", "/query?q=SELECT+AccountNumber+FROM+Account").status, 400)
        info = self.run_job("Account", "insert", "Name,AccountNumber\nB,1\n")
        self.assertEqual((info["state"], info["errorMessage"]),
                         ("Failed", "InvalidBatch : Field name not found : AccountNumber"))
        self.assertNotIn("AccountNumber", self.admin("GET", "/schema")["objects"]["Account"]["fields"])

    def test_bad_requests(self):
        for path, body, status in (("/schema/Nope/fields", {"name": "X__c"}, 404),
                                   ("/schema/Account/fields", {}, 400),
                                   ("/schema/Account/fields", {"name": "1st"}, 400),
                                   ("/schema/Account/fields", {"name": "systemmodstamp", "type": "string"}, 400),
                                   ("/schema/Account/fields", {"name": "Id", "type": "string"}, 400),
                                   ("/schema/Account/fields", {"name": "X__c", "type": "blob"}, 400),
                                   ("/schema/Account/fields", {"name": "X__c", "type": "id"}, 400),
                                   ("/schema/Account/fields", {"name": "X__c", "type": "reference"}, 400),
                                   ("/schema/Account/fields", {"name": "X__c", "type": "reference",
                                                               "referenceTo": ["Nope"]}, 400),
                                   ("/schema/Account/fields", {"name": "X__c", "length": "long"}, 400)):
            r = self.request("POST", "/__emulator" + path, body, token=None)
            self.assertEqual(r.status, status, (path, body, r.text))
        for field, status in (("Nope", 404), ("Id", 400), ("CreatedDate", 400)):
            r = self.request("DELETE", "/__emulator/schema/Account/fields/" + field, token=None)
            self.assertEqual(r.status, status, (field, r.text))
        self.assertNotIn("X__c", self.field_names())
        self.assertIn("CreatedDate", self.field_names())

    def test_reset_restores_the_metadata_with_a_newer_stamp(self):
        names = self.field_names()
        self.admin("DELETE", "/schema/Account/fields/AccountNumber")
        stamp = self.put_field("Account", {"name": "Segment__c"})["modified_http_date"]
        self.assertEqual(self.describe(since=stamp).status, 304)
        schema = self.admin("GET", "/schema")
        self.assertEqual(list(schema), ["modified", "modified_http_date", "objects"])
        self.assertEqual(schema["objects"]["Account"]["fields"][-1], "Segment__c")
        self.assertEqual(list(schema["objects"]["Account"]), ["modified", "modified_http_date", "fields"])
        self.assertEqual(schema["modified_http_date"], stamp)
        self.admin("POST", "/reset")
        self.assertEqual(self.field_names(), names)
        self.assertEqual(self.describe(since=stamp).status, 200)
        self.assertEqual(self.api("GET", "/sobjects", headers={"If-Modified-Since": stamp}).status, 200)


if __name__ == "__main__":
    unittest.main()
