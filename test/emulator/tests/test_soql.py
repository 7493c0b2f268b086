"""SOQL semantics against docs/soql-and-rest.md §2 (and §1.5 for the errors): every statement runs through REST
/query and through a Bulk API 2.0 query job, which share one evaluator and must select the same rows in the same
order. A differential test of the foreign data wrapper compares such answers with PostgreSQL's local evaluation,
so each rule here is one a pushdown depends on."""

import unittest
import urllib.parse

from emu import EmuTestCase


def q(soql):
    return urllib.parse.quote(soql, safe="")


class Semantics(EmuTestCase):
    def setUp(self):
        super().setUp()
        acc = self.admin("POST", "/records/Account", [
            {"Name": "ACME Corp", "Industry": "Banking", "Active__c": True, "Customer_Since__c": "2020-01-31"},
            {"Name": "beta ltd", "Active__c": False},
            {"Name": "Tanaka & Söhne 東京 😀", "Industry": "Retail", "Active__c": False}])["ids"]
        self.acme, self.beta, self.uni = acc
        self.contacts = self.admin("POST", "/records/Contact", [
            {"LastName": "Okafor", "FirstName": "Ada", "AccountId": self.acme, "Score__c": "10.50",
             "Birthdate": "1990-01-02", "Last_Contacted__c": "2025-10-01T08:00:00.000Z", "HasOptedOutOfEmail": True,
             "Title": "50% off_now"},
            {"LastName": "okafor", "AccountId": self.beta, "Last_Contacted__c": "2025-10-02T09:30:00.000Z",
             "Title": "a\\b"},
            {"LastName": "Lindqvist", "FirstName": "Per", "Score__c": "-3.50", "Title": "line1\nline2"},
            {"LastName": "Zed", "FirstName": "zoe", "AccountId": self.uni, "Score__c": "12345678.00"},
            {"LastName": "Émile", "FirstName": "X", "Title": "50 percent"}])["ids"]

    # -- helpers ----------------------------------------------------------------------------------------------
    def rest(self, soql, op="query"):
        r = self.api("GET", "/%s?q=%s" % (op, q(soql)))
        self.assertEqual(r.status, 200, "%s: %s" % (soql, r.text))
        return r.json()["records"]

    def names(self, soql, field="LastName"):
        """field of the selected rows, in order, from REST /query; the Bulk query job must agree."""
        rest = [rec[field] for rec in self.rest(soql)]
        bulk = [row[field] for row in self.query_rows(soql)]
        self.assertEqual(["" if v is None else v for v in rest], bulk, soql)
        return rest

    def refused(self, soql, code, bulk_code=None):
        """REST and a Bulk job creation both answer 400 with code; returns the REST message."""
        r = self.api("GET", "/query?q=" + q(soql))
        self.assertApiError(r, 400, code)
        b = self.api("POST", "/jobs/query", {"operation": "query", "query": soql})
        self.assertApiError(b, 400, bulk_code or code)
        return r.json()[0]["message"]

    # -- §2.1 ---------------------------------------------------------------------------------------------------
    def test_text_comparisons_fold_case(self):
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE LastName = 'OKAFOR' ORDER BY FirstName"),
                         ["okafor", "Okafor"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE LastName IN ('okAFor', 'ZED') "
                                    "ORDER BY LastName DESC, FirstName"), ["Zed", "okafor", "Okafor"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE LastName != 'OKAFOR' ORDER BY LastName"),
                         ["Émile", "Lindqvist", "Zed"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE LastName > 'm' AND LastName < 'Z' "
                                    "ORDER BY LastName"), ["Okafor", "okafor"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE LastName LIKE 'OKA%' ORDER BY FirstName"),
                         ["okafor", "Okafor"])
        self.assertEqual(self.names("SELECT Name FROM Account WHERE Name LIKE '%SÖHNE%'", "Name"),
                         ["Tanaka & Söhne 東京 😀"])

    def test_case_sensitive_field_compares_exactly(self):
        """Invoice__c.Invoice_Key__c is described caseSensitive: = LIKE IN do not fold case there."""
        self.admin("POST", "/records/Invoice__c", [{"Invoice_Key__c": "K-1"}, {"Invoice_Key__c": "k-1"}])
        for soql, want in (("WHERE Invoice_Key__c = 'K-1'", ["K-1"]), ("WHERE Invoice_Key__c = 'k-1'", ["k-1"]),
                           ("WHERE Invoice_Key__c LIKE 'k%'", ["k-1"]),
                           ("WHERE Invoice_Key__c IN ('K-1', 'x')", ["K-1"]),
                           ("WHERE Invoice_Key__c != 'K-1'", ["k-1"])):
            self.assertEqual(self.names("SELECT Invoice_Key__c FROM Invoice__c " + soql, "Invoice_Key__c"), want,
                             soql)
        # sorting stays case-insensitive: the tie keeps the store's order
        self.assertEqual(self.names("SELECT Invoice_Key__c FROM Invoice__c ORDER BY Invoice_Key__c",
                                    "Invoice_Key__c"), ["K-1", "k-1"])

    def test_ids_compare_on_the_18_character_form(self):
        okafor = self.contacts[0]
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Id = '%s'" % okafor[:15]), ["Okafor"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Id IN ('%s', '%s') ORDER BY LastName"
                                    % (okafor, self.contacts[3][:15])), ["Okafor", "Zed"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE AccountId = '%s'" % self.acme[:15]),
                         ["Okafor"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Id = '%s'" % (okafor[:15] +
                                                                                       okafor[15:].lower())),
                         ["Okafor"])  # the suffix's case does not matter
        self.assertEqual(self.rest("SELECT Id FROM Contact WHERE Id = '%s'" % okafor[:15])[0]["Id"], okafor)
        msg = self.refused("SELECT Id FROM Contact WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR")
        self.assertTrue(msg.endswith("\ninvalid ID field: abc"), msg)
        self.refused("SELECT Id FROM Contact WHERE AccountId IN ('%s', '001')" % self.acme,
                     "INVALID_QUERY_FILTER_OPERATOR")

    # -- §2.2 ---------------------------------------------------------------------------------------------------
    def test_like_wildcards_and_escapes(self):
        title = "SELECT LastName FROM Contact WHERE Title LIKE '%s' ORDER BY LastName"
        self.assertEqual(self.names(title % "50%"), ["Émile", "Okafor"])
        self.assertEqual(self.names(title % "50\\%%"), ["Okafor"])           # \% is a literal %
        self.assertEqual(self.names(title % "%off\\_now"), ["Okafor"])       # \_ is a literal _
        self.assertEqual(self.names(title % "%off_now"), ["Okafor"])
        self.assertEqual(self.names(title % "50_percent"), ["Émile"])        # _ is one character
        self.assertEqual(self.names(title % "50__percent"), [])
        self.assertEqual(self.names(title % "a\\\\b"), ["okafor"])           # \\ is a backslash
        self.assertEqual(self.names(title % "line1%"), ["Lindqvist"])        # % spans line breaks
        self.assertEqual(self.names(title % "line1_line2"), ["Lindqvist"])
        self.assertEqual(self.names(title % "line1"), [])                    # the whole value must match
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE NOT Title LIKE '%5%' ORDER BY LastName"),
                         ["Lindqvist", "okafor", "Zed"])                     # NOT keeps the null Title
        # no ESCAPE clause, no NOT LIKE; \% is an error outside LIKE
        self.refused("SELECT Id FROM Contact WHERE Title LIKE '5!%' ESCAPE '!'", "MALFORMED_QUERY")
        self.refused("SELECT Id FROM Contact WHERE Title NOT LIKE '5%'", "MALFORMED_QUERY")
        msg = self.refused("SELECT Id FROM Contact WHERE Title = '50\\%'", "MALFORMED_QUERY")
        self.assertTrue(msg.endswith("Invalid string literal '50\\%'. Illegal character sequence '\\%' in string "
                                     "literal."), msg)

    # -- §2.3 ---------------------------------------------------------------------------------------------------
    def test_in_and_not_in(self):
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE FirstName NOT IN ('ada', 'PER') "
                                    "ORDER BY LastName"), ["Émile", "okafor", "Zed"])  # null FirstName kept
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE FirstName IN ('ada', null) "
                                    "ORDER BY LastName"), ["Okafor", "okafor"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Score__c IN (10.5, -3.5) "
                                    "ORDER BY LastName"), ["Lindqvist", "Okafor"])
        for soql in ("SELECT Id FROM Contact WHERE LastName IN ()", "SELECT Id FROM Contact WHERE LastName NOT IN ()",
                     "SELECT Id FROM Contact WHERE LastName IN ('a',)", "SELECT Id FROM Contact WHERE LastName IN 'a'"):
            self.refused(soql, "MALFORMED_QUERY")

    def test_multipicklist_sets_includes_excludes(self):
        self.admin("POST", "/records/Lead", [
            {"LastName": "L1", "Company": "C", "Interests__c": "Analytics;Cloud"},
            {"LastName": "L2", "Company": "C", "Interests__c": "Cloud"},
            {"LastName": "L3", "Company": "C"}])
        lead = "SELECT LastName FROM Lead WHERE Interests__c %s ORDER BY LastName"
        self.assertEqual(self.names(lead % "= 'cloud;ANALYTICS'"), ["L1"])      # the whole set, any order
        self.assertEqual(self.names(lead % "INCLUDES ('Cloud')"), ["L1", "L2"])
        self.assertEqual(self.names(lead % "INCLUDES ('Cloud;Analytics', 'x')"), ["L1"])  # ; inside = AND
        self.assertEqual(self.names(lead % "EXCLUDES ('Analytics')"), ["L2", "L3"])
        self.assertEqual(self.names(lead % "!= 'Cloud'"), ["L1", "L3"])
        self.refused(lead % "LIKE 'C%'", "INVALID_QUERY_FILTER_OPERATOR")
        self.refused(lead % "> 'a'", "INVALID_QUERY_FILTER_OPERATOR")
        self.refused("SELECT Id FROM Lead WHERE LastName INCLUDES ('a')", "INVALID_QUERY_FILTER_OPERATOR")

    # -- §2.4 ---------------------------------------------------------------------------------------------------
    def test_not_equal_keeps_nulls_unless_switched_to_three_valued(self):
        two = self.names("SELECT LastName FROM Contact WHERE FirstName != 'Ada' ORDER BY LastName")
        self.assertEqual(two, ["Émile", "Lindqvist", "okafor", "Zed"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE NOT FirstName = 'Ada' ORDER BY LastName"),
                         two)
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE FirstName != 'Ada' AND FirstName != null "
                                    "ORDER BY LastName"), ["Émile", "Lindqvist", "Zed"])  # §2.10's translation
        self.config(soql_not_equal_keeps_nulls=False)
        for soql in ("SELECT LastName FROM Contact WHERE FirstName != 'Ada' ORDER BY LastName",
                     "SELECT LastName FROM Contact WHERE NOT FirstName = 'Ada' ORDER BY LastName",
                     "SELECT LastName FROM Contact WHERE FirstName NOT IN ('Ada') ORDER BY LastName"):
            self.assertEqual(self.names(soql), ["Émile", "Lindqvist", "Zed"], soql)
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE FirstName = 'Ada' OR NOT Score__c > 0 "
                                    "ORDER BY LastName"), ["Lindqvist", "Okafor"])  # unknown OR true = true

    def test_boolean_null_means_false(self):
        acc = "SELECT Name FROM Account WHERE Active__c %s ORDER BY Name"
        self.assertEqual(self.names(acc % "= null", "Name"), ["beta ltd", "Tanaka & Söhne 東京 😀"])
        self.assertEqual(self.names(acc % "!= null", "Name"), ["ACME Corp"])
        self.assertEqual(self.names(acc % "= false", "Name"), ["beta ltd", "Tanaka & Söhne 東京 😀"])
        self.assertEqual(self.names(acc % "= true", "Name"), ["ACME Corp"])

    def test_parent_paths_are_outer_joins(self):
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Account.Name = null ORDER BY LastName"),
                         ["Émile", "Lindqvist"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Account.Industry = null ORDER BY LastName"),
                         ["Émile", "Lindqvist", "okafor"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Account.Industry = 'banking' OR "
                                    "Score__c < 0 ORDER BY LastName"), ["Lindqvist", "Okafor"])
        self.assertEqual(self.names("SELECT LastName FROM Contact WHERE Account.Industry != 'Banking' "
                                    "ORDER BY LastName"), ["Émile", "Lindqvist", "okafor", "Zed"])
        # ORDER BY a parent field keeps the rows without a parent (nulls first)
        self.assertEqual(self.names("SELECT LastName FROM Contact ORDER BY Account.Name, LastName"),
                         ["Émile", "Lindqvist", "Okafor", "okafor", "Zed"])

    # -- §2.5 ---------------------------------------------------------------------------------------------------
    def test_order_by_nulls_case_and_stability(self):
        c = "SELECT LastName FROM Contact ORDER BY "
        self.assertEqual(self.names(c + "Score__c"), ["okafor", "Émile", "Lindqvist", "Okafor", "Zed"])
        self.assertEqual(self.names(c + "Score__c ASC"), ["okafor", "Émile", "Lindqvist", "Okafor", "Zed"])
        self.assertEqual(self.names(c + "Score__c DESC"), ["Zed", "Okafor", "Lindqvist", "okafor", "Émile"])
        self.assertEqual(self.names(c + "Score__c ASC NULLS LAST"), ["Lindqvist", "Okafor", "Zed", "okafor",
                                                                    "Émile"])
        self.assertEqual(self.names(c + "Score__c DESC NULLS FIRST"), ["okafor", "Émile", "Zed", "Okafor",
                                                                      "Lindqvist"])
        # text sorts case-insensitively; equal keys keep the next key's order, then the store's
        self.assertEqual(self.names(c + "LastName"), ["Émile", "Lindqvist", "Okafor", "okafor", "Zed"])
        self.assertEqual(self.names(c + "LastName DESC"), ["Zed", "Okafor", "okafor", "Lindqvist", "Émile"])
        self.assertEqual(self.names(c + "LastName, FirstName DESC"), ["Émile", "Lindqvist", "Okafor", "okafor",
                                                                     "Zed"])
        self.assertEqual(self.names(c + "LastName, FirstName NULLS LAST"), ["Émile", "Lindqvist", "Okafor",
                                                                           "okafor", "Zed"])
        self.assertEqual(self.names(c + "LastName DESC, FirstName"), ["Zed", "okafor", "Okafor", "Lindqvist",
                                                                     "Émile"])
        self.assertEqual(self.names(c + "HasOptedOutOfEmail DESC, LastName LIMIT 2"), ["Okafor", "Émile"])
        self.assertEqual(self.names(c + "Score__c DESC LIMIT 1"), ["Zed"])
        self.refused(c + "LastName NULLS", "MALFORMED_QUERY")

    # -- §2.6 ---------------------------------------------------------------------------------------------------
    def test_date_and_datetime_literals(self):
        con = "SELECT LastName FROM Contact WHERE %s ORDER BY LastName"
        self.assertEqual(self.names(con % "Birthdate = 1990-01-02"), ["Okafor"])
        self.assertEqual(self.names(con % "Birthdate > 1990-01-01"), ["Okafor"])
        # date-times compare as instants: Z, offsets either way, fractions
        for lit in ("2025-10-02T09:30:00Z", "2025-10-02T09:30:00.000Z", "2025-10-02T11:30:00+02:00",
                    "2025-10-02T07:30:00.000-02:00", "2025-10-02T09:30:00.000+00:00"):
            self.assertEqual(self.names(con % ("Last_Contacted__c = " + lit)), ["okafor"], lit)
            self.assertEqual(self.names(con % ("Last_Contacted__c < " + lit)), ["Okafor"], lit)
        self.assertEqual(self.names(con % "Last_Contacted__c > 2025-10-02T09:29:59.999Z"), ["okafor"])
        self.assertEqual(self.names(con % "CreatedDate > 2000-01-01T00:00:00Z AND Birthdate != null"), ["Okafor"])
        # not interchangeable: a date against a date-time field and the reverse are INVALID_FIELD
        msg = self.refused(con % "Last_Contacted__c > 2025-10-01", "INVALID_FIELD")
        self.assertTrue(msg.endswith("value of filter criterion for field 'Last_Contacted__c' must be of type "
                                     "dateTime and should not be enclosed in quotes"), msg)
        self.refused(con % "Birthdate > 1990-01-01T00:00:00Z", "INVALID_FIELD")
        self.refused(con % "Birthdate > '1990-01-01'", "INVALID_FIELD")
        self.refused(con % "LastName = 1990-01-01", "INVALID_FIELD")
        self.refused(con % "Birthdate > 1990-02-30", "MALFORMED_QUERY")
        self.refused(con % "Last_Contacted__c > 2025-10-01T10:00:00", "MALFORMED_QUERY")  # needs Z or an offset

    def test_raw_plus_in_an_offset_is_the_logged_parse_error(self):
        """§1.1: an unencoded + arrives as a space."""
        soql = "SELECT Id FROM Contact WHERE Last_Contacted__c >= 2013-12-01T12:00:00+00:00"
        r = self.api("GET", "/query?q=" + soql.replace(" ", "+"))
        self.assertApiError(r, 400, "MALFORMED_QUERY")
        at = soql.index("+00:00")
        self.assertEqual(r.json()[0]["message"], "\n%s\n%s^\nERROR at Row:1:Column:%d\nline 1:%d no viable "
                         "alternative at character ' '" % (soql.replace("+", " "), " " * at, at, at))
        self.assertEqual(len(self.rest(soql)), 2)  # with the + encoded as %2B it parses

    def test_numbers_compare_as_decimals(self):
        con = "SELECT LastName FROM Contact WHERE %s ORDER BY LastName"
        self.assertEqual(self.names(con % "Score__c = 10.5"), ["Okafor"])
        self.assertEqual(self.names(con % "Score__c = 10.500"), ["Okafor"])
        self.assertEqual(self.names(con % "Score__c >= -3.5 AND Score__c < 10.51"), ["Lindqvist", "Okafor"])
        self.assertEqual(self.names(con % "Score__c > 12345677.99"), ["Zed"])
        self.assertEqual(self.names(con % "Score__c = .5"), [])
        self.refused(con % "Score__c = '10.5'", "INVALID_FIELD")
        self.refused(con % "LastName = 5", "INVALID_FIELD")
        self.refused(con % "HasOptedOutOfEmail = 'true'", "INVALID_FIELD")
        self.refused(con % "LastName = true", "INVALID_FIELD")

    def test_string_literal_escapes(self):
        ids = self.admin("POST", "/records/Contact", [
            {"LastName": "O'Brien", "Title": "say \"hi\"\r\n\t\b\f\\ end"}])["ids"]
        con = "SELECT Id FROM Contact WHERE %s"
        for cond in ("LastName = 'O\\'Brien'", "Title = 'say \\\"hi\\\"\\r\\n\\t\\b\\f\\\\ end'",
                     "Title = 'SAY \\\"HI\\\"\\R\\N\\T\\B\\F\\\\ END'", "Title = 'say \\u0022hi\\u0022\\r\\n\\t\\b"
                     "\\f\\u005C end'", "LastName = '\\u004f\\U0027Brien'"):
            self.assertEqual([r["Id"] for r in self.rest(con % cond)], ids, cond)
            self.assertEqual([r["Id"] for r in self.query_rows(con % cond)], ids, cond)
        msg = self.refused(con % "LastName = 'a\\d'", "MALFORMED_QUERY")
        self.assertTrue(msg.endswith("\nInvalid string literal 'a\\d'. Illegal character sequence '\\d' in string "
                                     "literal."), msg)
        msg = self.refused(con % "LastName = '\\u12'", "MALFORMED_QUERY")
        self.assertIn("Illegal unicode sequence", msg)
        self.refused(con % "LastName = 'unterminated", "MALFORMED_QUERY")
        self.refused(con % "LastName = '\\ud83d'", "MALFORMED_QUERY")  # a lone surrogate

    def test_unicode_round_trips(self):
        name = "Tanaka & Söhne 東京 😀"
        for cond in ("Name = '%s'" % name, "Name = 'tanaka & SÖHNE 東京 😀'",
                     "Name = 'Tanaka & S\\u00f6hne \\u6771\\u4eac \\ud83d\\ude00'", "Name LIKE '%%京 _'"):
            self.assertEqual(self.names("SELECT Name FROM Account WHERE " + cond, "Name"), [name], cond)
        self.assertEqual(self.rest("SELECT Name FROM Account WHERE Id = '%s'" % self.uni)[0]["Name"], name)
        r = self.api("GET", "/query?q=SELECT+Name+FROM+Account+WHERE+Name+%3D+%27%FF%27")  # not UTF-8
        self.assertApiError(r, 400, "MALFORMED_QUERY")

    # -- §2.7 ---------------------------------------------------------------------------------------------------
    def test_describe_flags_decide_where_and_order_by(self):
        """Every field of every object: WHERE accepts it exactly when describe says filterable, ORDER BY exactly
        when sortable (REST; Bulk refuses compound fields outright)."""
        for obj in ("Account", "Contact", "Lead", "Invoice__c"):
            fields = self.api("GET", "/sobjects/%s/describe" % obj).json()["fields"]
            for f in fields:
                r = self.api("GET", "/query?q=" + q("SELECT Id FROM %s WHERE %s = null" % (obj, f["name"])))
                self.assertEqual(r.status == 200, f["filterable"], (obj, f["name"], r.text))
                if not f["filterable"]:
                    self.assertApiError(r, 400, "INVALID_FIELD")
                    self.assertTrue(r.json()[0]["message"].endswith(
                        "field '%s' can not be filtered in query call" % f["name"]), r.text)
                r = self.api("GET", "/query?q=" + q("SELECT Id FROM %s ORDER BY %s" % (obj, f["name"])))
                self.assertEqual(r.status == 200, f["sortable"], (obj, f["name"], r.text))
                if not f["sortable"]:
                    self.assertTrue(r.json()[0]["message"].endswith(
                        "field '%s' can not be sorted in a query call" % f["name"]), r.text)
        self.refused("SELECT Id FROM Contact WHERE Description LIKE 'x%'", "INVALID_FIELD")
        self.refused("SELECT Id FROM Contact WHERE Account.Description = null", "INVALID_FIELD")
        self.refused("SELECT Id FROM Lead ORDER BY Interests__c", "INVALID_FIELD")

    def test_first_token_error_is_the_recorded_one(self):
        r = self.api("GET", "/query?q=" + q("SELEKT Name FROM Account"))
        self.assertEqual(r.text, '[{"message":"unexpected token: SELEKT","errorCode":"MALFORMED_QUERY"}]')


if __name__ == "__main__":
    unittest.main()
