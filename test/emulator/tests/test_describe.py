"""Describe against docs/soql-and-rest.md §3 and §6 "Describe": the describeGlobal entry of §3.1, every field
property of §3.2 with the per-type flags and recorded values, child relationships, compound fields, conditional
requests (§3.4)."""

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
        rows = self.query_rows("SELECT Invoice_Key__c, Status__c, Amount__c, Account__r.Name, Channels__c "
                               "FROM Invoice__c")
        self.assertEqual(rows, [{"Invoice_Key__c": "K-1", "Status__c": "Draft", "Amount__c": "12.50",
                                 "Account__r.Name": "Acme", "Channels__c": "Email;Portal"}])


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


if __name__ == "__main__":
    unittest.main()
