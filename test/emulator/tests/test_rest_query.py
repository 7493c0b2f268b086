"""REST /query and /queryAll against docs/soql-and-rest.md §1: paging and cursors (§1.1, §1.3), the record shape
and value encodings (§1.2, §1.4), the errors of §1.5."""

import http.client
import json
import re
import socket
import sys
import unittest
import urllib.parse

from emu import EMU_DIR, TOKEN, EmuTestCase

sys.path.insert(0, EMU_DIR)
from sf_emulator.rest import java_double  # noqa: E402

NEXT_RE = re.compile(r"^/services/data/v62\.0/query/(01g[0-9A-Za-z]{15})-(\d+)$")
INVALID_LOCATOR = '[{"message":"invalid query locator","errorCode":"INVALID_QUERY_LOCATOR"}]'


def q(soql):
    return urllib.parse.quote(soql, safe="")


class Client:
    """Paging the way a client does it: the first page, then each nextRecordsUrl verbatim."""

    def first(self, soql, op="query", size=None):
        h = {"Sforce-Query-Options": "batchSize=%s" % size} if size is not None else None
        r = self.api("GET", "/%s?q=%s" % (op, q(soql)), headers=h)
        self.assertEqual(r.status, 200, r.text)
        return r.json()

    def follow(self, url, headers=None):
        r = self.request("GET", url, headers=headers)
        self.assertEqual(r.status, 200, r.text)
        return r.json()

    def pages(self, soql, op="query", size=None):
        body = self.first(soql, op, size)
        out = [body]
        while not body["done"]:
            body = self.follow(body["nextRecordsUrl"])
            out.append(body)
        return out


class Paging(Client, EmuTestCase):
    def seed(self, n, **values):
        values.setdefault("Name", "Acct {n}")
        self.admin("POST", "/records/Account", {"generate": {"count": n, "values": values}})

    def test_default_pages_of_2000_with_next_records_url(self):
        self.seed(4500)
        used0 = int(self.api("GET", "/limits").headers["Sforce-Limit-Info"].split("=")[1].split("/")[0])
        pages = self.pages("SELECT Id, Name FROM Account ORDER BY Name")
        self.assertEqual([len(p["records"]) for p in pages], [2000, 2000, 500])
        self.assertEqual({p["totalSize"] for p in pages}, {4500})
        self.assertEqual([p["done"] for p in pages], [False, False, True])
        self.assertEqual([list(p) for p in pages], [["totalSize", "done", "nextRecordsUrl", "records"]] * 2 +
                         [["totalSize", "done", "records"]])
        first, second = (NEXT_RE.match(p["nextRecordsUrl"]) for p in pages[:2])
        self.assertEqual((first.group(2), second.group(2)), ("2000", "4000"))
        self.assertEqual(first.group(1), second.group(1))  # one cursor
        names = [r["Name"] for p in pages for r in p["records"]]
        self.assertEqual(names, sorted("Acct %d" % i for i in range(1, 4501)))
        # one API request per page
        used = int(self.api("GET", "/limits").headers["Sforce-Limit-Info"].split("=")[1].split("/")[0])
        self.assertEqual(used - used0, 3 + 1)
        # a result that fits one page opens no cursor
        body = self.first("SELECT Id FROM Account LIMIT 2000")
        self.assertEqual((body["totalSize"], body["done"], "nextRecordsUrl" in body), (2000, True, False))

    def test_batch_size_header_is_clamped_to_200_2000(self):
        self.seed(2500)
        soql = "SELECT Id FROM Account"
        for size, want in (("500", 500), ("200", 200), ("50", 200), ("0", 200), ("5000", 2000), ("x", 2000)):
            body = self.first(soql, size=size)
            self.assertEqual(len(body["records"]), want, size)
            self.assertEqual(NEXT_RE.match(body["nextRecordsUrl"]).group(2), str(want), size)
        # the size chosen first holds for the whole cursor (a header on later requests is ignored)
        body = self.first(soql, size=700)
        nxt = self.follow(body["nextRecordsUrl"], headers={"Sforce-Query-Options": "batchSize=200"})
        self.assertEqual((len(nxt["records"]), NEXT_RE.match(nxt["nextRecordsUrl"]).group(2)), (700, "1400"))
        # with two long text areas selected a page holds at most 200 rows
        body = self.first("SELECT Id, Description, Parent.Description FROM Account")
        self.assertEqual(len(body["records"]), 200)
        self.assertEqual(len(self.first("SELECT Id, Description FROM Account")["records"]), 2000)
        # tests may lower the floor
        self.config(rest_query_min_batch_size=1)
        pages = self.pages("SELECT Id FROM Account ORDER BY Name LIMIT 5", size=2)
        self.assertEqual([len(p["records"]) for p in pages], [2, 2, 1])
        self.assertEqual([NEXT_RE.match(p["nextRecordsUrl"]).group(2) for p in pages[:2]], ["2", "4"])

    def test_pages_come_from_the_snapshot_of_the_first_request(self):
        self.config(shuffle_results=False)
        self.seed(450)
        body = self.first("SELECT Id, Name FROM Account ORDER BY Name", size=200)
        late = sorted(self.records("Account"), key=lambda r: r["Name"])[300]
        info = self.run_job("Account", "update", "Id,Name\n%s,Renamed\n" % late["Id"])
        self.assertEqual(info["numberRecordsFailed"], 0)
        self.run_job("Account", "insert", "Name\nAcct 0 new\n")
        self.run_job("Account", "delete", "Id\n%s\n" % body["records"][0]["Id"])
        rest = []
        while not body["done"]:
            body = self.follow(body["nextRecordsUrl"])
            self.assertEqual(body["totalSize"], 450)
            rest += body["records"]
        self.assertEqual(len(rest), 250)
        self.assertIn(late["Name"], [r["Name"] for r in rest])
        self.assertNotIn("Renamed", [r["Name"] for r in rest])
        # a new request sees the writes
        self.assertEqual(self.first("SELECT Id FROM Account", size=200)["totalSize"], 450)
        self.assertEqual(self.first("SELECT Id FROM Account WHERE Name = 'Renamed'")["totalSize"], 1)

    def test_query_all_continuations_keep_deleted_rows(self):
        self.seed(150)
        self.seed(150, Name="Gone {n}", IsDeleted=True)
        self.assertEqual(self.first("SELECT Id FROM Account", size=200)["totalSize"], 150)
        pages = self.pages("SELECT Name, IsDeleted FROM Account", op="queryAll", size=200)
        self.assertEqual(len(pages), 2)
        self.assertRegex(pages[0]["nextRecordsUrl"], NEXT_RE)  # says query, not queryAll
        self.assertEqual(pages[1]["totalSize"], 300)
        self.assertEqual([r["IsDeleted"] for r in pages[1]["records"]], [True] * 100)
        # the continuation path under queryAll answers the same
        url = pages[0]["nextRecordsUrl"].replace("/query/", "/queryAll/")
        self.assertEqual(self.follow(url), pages[1])

    def test_pages_are_repeatable(self):
        self.seed(450)
        body = self.first("SELECT Id, Name FROM Account", size=200)
        a = self.request("GET", body["nextRecordsUrl"])
        b = self.request("GET", body["nextRecordsUrl"])
        self.assertEqual((a.status, a.raw), (b.status, b.raw))
        last = self.follow(json.loads(a.text)["nextRecordsUrl"])
        self.assertEqual((len(last["records"]), last["done"]), (50, True))

    def test_invalid_query_locator(self):
        self.seed(450)
        url = self.first("SELECT Id FROM Account", size=200)["nextRecordsUrl"]
        loc = NEXT_RE.match(url).group(1)
        base = "/services/data/v62.0/query/"
        for bad in (base + "01gEm0000000999ZZZ-200", base + "nonsense", base + loc + "-450", base + loc,
                    base + loc[:15] + "-200"):
            r = self.request("GET", bad)
            self.assertEqual((r.status, r.text), (400, INVALID_LOCATOR), bad)
        # a reset forgets cursors, and locators are never reused
        self.admin("POST", "/reset")
        self.seed(450)
        r = self.request("GET", url)
        self.assertEqual((r.status, r.text), (400, INVALID_LOCATOR))
        self.assertNotEqual(NEXT_RE.match(self.first("SELECT Id FROM Account", size=200)["nextRecordsUrl"])
                            .group(1), loc)

    def test_cursor_ttl_and_eviction(self):
        self.seed(450)
        self.config(query_cursor_ttl_seconds=60)
        url = self.first("SELECT Id FROM Account", size=200)["nextRecordsUrl"]
        self.admin("POST", "/clock", {"advance_seconds": 30})
        self.assertEqual(self.request("GET", url).status, 200)
        self.admin("POST", "/clock", {"advance_seconds": 31})
        r = self.request("GET", url)
        self.assertEqual((r.status, r.text), (400, INVALID_LOCATOR))
        # at most max_query_cursors stay open, the oldest goes first
        self.config(max_query_cursors=2, query_cursor_ttl_seconds=None)
        urls = [self.first("SELECT Id FROM Account", size=200)["nextRecordsUrl"] for _ in range(3)]
        self.assertEqual([self.request("GET", u).status for u in urls], [400, 200, 200])


class Shapes(Client, EmuTestCase):
    def setUp(self):
        super().setUp()
        self.admin("POST", "/records/User", [{"Username": "u2@x.org", "LastName": "Two", "Email": "u2@x.org"}])
        self.admin("POST", "/records/Group", [{"Name": "Queue"}])
        self.group = self.records("Group")[0]["Id"]
        self.acc = self.admin("POST", "/records/Account", [
            {"Name": "Parent Co", "AnnualRevenue": "5000"},
            {"Name": "", "Rating": "Hot"}])["ids"]
        self.admin("POST", "/records/Account", [{"Name": "Child", "ParentId": self.acc[0]}])
        self.con = self.admin("POST", "/records/Contact", [
            {"LastName": "Big", "AccountId": self.acc[0], "Score__c": "12345678.00",
             "Last_Contacted__c": "2017-10-11T13:11:58.000Z", "Birthdate": "1990-01-02"},
            {"LastName": "Mid", "Score__c": "1234567.00"},
            {"LastName": "Small", "Score__c": "543210.00"},
            {"LastName": "Frac", "Score__c": "-3.50"},
            {"LastName": "Tiny", "Score__c": "0.00"}])["ids"]

    def test_record_shape_attributes_and_nested_parents(self):
        body = self.first("SELECT LastName, Account.Name, Id, Account.Parent.Name, Account.Id FROM Contact "
                          "WHERE LastName IN ('Big', 'Mid') ORDER BY LastName")
        big, mid = body["records"]
        self.assertEqual(list(big), ["attributes", "LastName", "Account", "Id"])
        self.assertEqual(big["attributes"], {"type": "Contact",
                                             "url": "/services/data/v62.0/sobjects/Contact/%s" % self.con[0]})
        self.assertEqual(big["Account"], {"attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/"
                                                                                  "Account/%s" % self.acc[0]},
                                          "Name": "Parent Co", "Parent": None, "Id": self.acc[0]})
        self.assertIsNone(mid["Account"])  # no parent: null, not an object of nulls
        # a parent's type is its own: a polymorphic owner that is a queue says Group
        lead = self.admin("POST", "/records/Lead", [{"LastName": "L", "Company": "C", "OwnerId": self.group}])["ids"]
        rec = self.first("SELECT Owner.Name FROM Lead WHERE Id = '%s'" % lead[0])["records"][0]
        self.assertEqual(rec["Owner"]["attributes"], {"type": "Group",
                                                      "url": "/services/data/v62.0/sobjects/Group/" + self.group})
        self.assertEqual(self.first("SELECT Id FROM Contact LIMIT 1")["totalSize"], 1)

    def test_numbers_as_salesforce_writes_them(self):
        """§1.4: doubles with .0, E notation from 8 integer digits; Bulk CSV keeps the stored text."""
        r = self.api("GET", "/query?q=" + q("SELECT LastName, Score__c FROM Contact ORDER BY LastName"))
        self.assertEqual(r.status, 200)
        pairs = re.findall(r'"LastName":"(\w+)","Score__c":([^}]*)\}', r.text)
        self.assertEqual(pairs, [("Big", "1.2345678E7"), ("Frac", "-3.5"), ("Mid", "1234567.0"),
                                 ("Small", "543210.0"), ("Tiny", "0.0")])
        r = self.api("GET", "/query?q=" + q("SELECT AnnualRevenue FROM Account WHERE Name = 'Parent Co'"))
        self.assertIn('"AnnualRevenue":5000.0}', r.text)
        r = self.api("GET", "/sobjects/Contact/" + self.con[0])
        self.assertIn('"Score__c":1.2345678E7,', r.text)
        pretty = self.api("GET", "/query?q=" + q("SELECT Score__c FROM Contact WHERE LastName = 'Big'"),
                          headers={"X-PrettyPrint": "1"})
        self.assertIn('"Score__c" : 1.2345678E7\n', pretty.text)
        self.assertEqual(json.loads(pretty.text)["records"][0]["Score__c"], 12345678.0)
        rows = self.query_rows("SELECT LastName, Score__c FROM Contact ORDER BY LastName")
        self.assertEqual([x["Score__c"] for x in rows], ["12345678.00", "-3.50", "1234567.00", "543210.00", "0.00"])

    def test_java_double_spelling(self):
        for x, want in ((0.0, "0.0"), (1.0, "1.0"), (-3.5, "-3.5"), (543210.0, "543210.0"),
                        (9999999.0, "9999999.0"), (9999999.99, "9999999.99"), (1e7, "1.0E7"),
                        (12345678.0, "1.2345678E7"), (-12345678.9, "-1.23456789E7"),
                        (123456789012345678.0, "1.2345678901234568E17"), (0.001, "0.001"), (0.0001, "1.0E-4"),
                        (1.5e-05, "1.5E-5"), (0.1 + 0.2, "0.30000000000000004")):
            self.assertEqual(java_double(x), want, x)

    def test_dates_times_booleans_multipicklists_and_empty_strings(self):
        rec = self.first("SELECT Last_Contacted__c, Birthdate, HasOptedOutOfEmail, Title FROM Contact "
                         "WHERE LastName = 'Big'")["records"][0]
        self.assertEqual((rec["Last_Contacted__c"], rec["Birthdate"], rec["HasOptedOutOfEmail"], rec["Title"]),
                         ("2017-10-11T13:11:58.000+0000", "1990-01-02", False, None))
        self.admin("POST", "/records/Invoice__c", [
            {"Invoice_Key__c": "K1", "Cutoff_Time__c": "13:30:00.000Z", "Channels__c": "Email;Portal"},
            {"Invoice_Key__c": "K2", "Cutoff_Time__c": "07:05:09", "Channels__c": ""}])
        recs = self.first("SELECT Cutoff_Time__c, Channels__c FROM Invoice__c ORDER BY Invoice_Key__c")["records"]
        self.assertEqual([(r["Cutoff_Time__c"], r["Channels__c"]) for r in recs],
                         [("13:30:00.000Z", "Email;Portal"), ("07:05:09.000Z", None)])
        # Salesforce keeps no empty strings: '' seeded is null
        blank = [a for a in self.records("Account") if a["Id"] == self.acc[1]][0]
        self.assertNotIn("Name", blank)
        self.assertEqual(self.first("SELECT Name FROM Account WHERE Rating = 'Hot'")["records"][0]["Name"], None)
        self.assertEqual(self.first("SELECT Name FROM Account WHERE Name = null")["totalSize"], 1)


class LongStatements(EmuTestCase):
    """§1.5, §1.6: a request target over 16,384 bytes answers 414, target plus headers over it 431; not JSON,
    before authentication, not counted. http.server's own 64 KiB request-line limit must not answer first."""
    HEADERS = [("Host", "127.0.0.1"), ("Authorization", "Bearer " + TOKEN)]

    def raw(self, uri, headers=HEADERS, sock=None):
        s = sock or socket.create_connection((self.emu.host, self.emu.port), timeout=30)
        s.sendall(("GET %s HTTP/1.1\r\n" % uri + "".join("%s: %s\r\n" % kv for kv in headers) + "\r\n")
                  .encode("latin-1"))
        r = http.client.HTTPResponse(s)
        r.begin()
        return r.status, r, r.read(), s

    @staticmethod
    def uri(length):
        """A REST query of exactly length bytes, padded inside a string literal."""
        head = "/services/data/v62.0/query?q=" + q("SELECT Id FROM Account WHERE Name != '")
        tail = q("'")
        return head + "x" * (length - len(head) - len(tail)) + tail

    def used(self):
        return self.admin("GET", "/usage")["api"]

    def test_414_and_431_at_16384_bytes(self):
        head_bytes = sum(len(k) + len(v) + 4 for k, v in self.HEADERS)
        status, r, body, s = self.raw(self.uri(16384 - head_bytes))
        self.assertEqual((status, json.loads(body)["totalSize"]), (200, 0))
        self.assertIsNotNone(r.getheader("Sforce-Limit-Info"))
        used = self.used()
        for length, want in ((16384 - head_bytes + 1, 431), (16384, 431), (16385, 414), (40000, 414),
                             (70000, 414), (500000, 414)):
            status, r, body, s = self.raw(self.uri(length), sock=s)  # one kept-alive connection throughout
            self.assertEqual(status, want, length)
            self.assertEqual(r.getheader("Content-Type"), "text/html", length)
            self.assertTrue(body.startswith(b"<html>"), body[:100])
            self.assertIsNone(r.getheader("Sforce-Limit-Info"))
        self.assertEqual(self.used(), used)  # refused at the edge: not counted
        statuses = [e["status"] for e in self.requests_log() if e["path"].endswith("/query")]
        self.assertEqual(statuses, [200, 431, 431, 414, 414, 414, 414])
        # headers alone can overflow it too, and without a token the answer is still 431, not 401
        status, _, _, _ = self.raw("/services/data/v62.0/limits", [("Host", "h"), ("X-Pad", "p" * 16400)])
        self.assertEqual(status, 431)
        status, _, _, _ = self.raw(self.uri(1000), self.HEADERS + [("X-Pad", "p" * (16384 - 1000 - head_bytes))])
        self.assertEqual(status, 431)
        s.close()

    def test_limit_is_configurable(self):
        self.config(max_request_head_bytes=0)
        status, _, body, _ = self.raw(self.uri(30000))
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main()
