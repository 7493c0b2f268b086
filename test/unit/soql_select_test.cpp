#include "core/soql_select.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <string>

namespace sfb {
namespace {

// The message of the sfb::Error(InvalidParameter) that parsing `soql` throws, or "" if it does not throw.
std::string error_of(const std::string &soql) {
    try {
        parse_soql_select(soql);
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter) << soql;
        return e.what();
    }
    return "";
}

TEST(SoqlColumnName, LowerCasesAndReplacesDots) {
    EXPECT_EQ(soql_column_name("Name"), "name");
    EXPECT_EQ(soql_column_name("Owner.Email"), "owner_email");
    EXPECT_EQ(soql_column_name("Account.Owner.Name"), "account_owner_name");
    EXPECT_EQ(soql_column_name("Parent__r.Ext_Id__c"), "parent__r_ext_id__c");
}

TEST(SoqlSelect, SimpleQuery) {
    const SoqlSelect q = parse_soql_select("SELECT Id, Name FROM Account");
    EXPECT_EQ(q.object, "Account");
    ASSERT_EQ(q.fields.size(), 2u);
    EXPECT_EQ(q.fields[0].path, "Id");
    EXPECT_EQ(q.fields[0].column, "id");
    EXPECT_EQ(q.fields[0].position, 8u);
    EXPECT_EQ(q.fields[1].path, "Name");
    EXPECT_EQ(q.fields[1].position, 12u);
    EXPECT_FALSE(q.has_where);
    EXPECT_FALSE(q.has_order_by);
    EXPECT_FALSE(q.has_limit);
}

TEST(SoqlSelect, RelationshipPathsKeepSpellingAndSplitParts) {
    const SoqlSelect q =
        parse_soql_select("SELECT Id, Owner.Email, Account.Owner.Name, Parent__r.Ext__c FROM Contact");
    ASSERT_EQ(q.fields.size(), 4u);
    EXPECT_EQ(q.fields[1].path, "Owner.Email");
    EXPECT_EQ(q.fields[1].parts, (std::vector<std::string>{"Owner", "Email"}));
    EXPECT_EQ(q.fields[1].column, "owner_email");
    EXPECT_EQ(q.fields[2].parts, (std::vector<std::string>{"Account", "Owner", "Name"}));
    EXPECT_EQ(q.fields[2].column, "account_owner_name");
    EXPECT_EQ(q.fields[3].column, "parent__r_ext__c");
}

TEST(SoqlSelect, KeywordsAreCaseInsensitiveAndWhitespaceIsFree) {
    const SoqlSelect q = parse_soql_select(
        " \n\tselect  Id ,Name\r\nfRoM  My_Obj__c\n where Name != null\n"
        "Order By Name limit 10 \n ");
    EXPECT_EQ(q.object, "My_Obj__c");
    ASSERT_EQ(q.fields.size(), 2u);
    EXPECT_TRUE(q.has_where);
    EXPECT_TRUE(q.has_order_by);
    EXPECT_TRUE(q.has_limit);
}

TEST(SoqlSelect, ObjectNamedLikeAKeywordIsAccepted) {
    EXPECT_EQ(parse_soql_select("SELECT Id FROM Order").object, "Order");
}

TEST(SoqlSelect, StringLiteralsHideKeywordsSemicolonsAndCommentMarkers) {
    const SoqlSelect q =
        parse_soql_select("SELECT Id FROM Account WHERE Name = 'x FROM y; -- /* z' AND Site = 'GROUP BY 1'");
    EXPECT_TRUE(q.has_where);
    EXPECT_FALSE(q.has_limit);
}

TEST(SoqlSelect, EscapedQuotesAndBackslashesInStrings) {
    EXPECT_NO_THROW(parse_soql_select(R"(SELECT Id FROM Contact WHERE LastName = 'O\'Brien; x')"));
    EXPECT_NO_THROW(parse_soql_select(R"(SELECT Id FROM Contact WHERE LastName = 'a\\' AND Title = 'b')"));
    EXPECT_NO_THROW(parse_soql_select(R"(SELECT Id FROM Contact WHERE LastName = '\n\r\t\b\f\"\N\u00e9')"));
    EXPECT_NO_THROW(parse_soql_select(R"(SELECT Id FROM Contact WHERE LastName LIKE '50\%\_')"));
}

TEST(SoqlSelect, SemiJoinWhereDoesNotCountAsTopLevelAndIsAllowed) {
    const SoqlSelect q = parse_soql_select(
        "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact "
        "WHERE Email != null) ORDER BY Name NULLS LAST");
    EXPECT_TRUE(q.has_where);
    EXPECT_TRUE(q.has_order_by);
    const SoqlSelect inner_only = parse_soql_select("SELECT Id FROM Account USING SCOPE Mine");
    EXPECT_FALSE(inner_only.has_where);
}

TEST(SoqlSelect, DatesNumbersAndRelativeLiteralsInTail) {
    EXPECT_NO_THROW(
        parse_soql_select("SELECT Id FROM Account WHERE CreatedDate >= 2024-01-31T12:00:00+02:00 "
                          "AND CloseDate = LAST_N_DAYS:30 AND Amount > -3.5 LIMIT 5"));
}

TEST(SoqlSelect, FieldNamedLikeOffsetOrGroupIsNotAClause) {
    EXPECT_NO_THROW(parse_soql_select("SELECT Id, Offset__c, Group__c FROM Account WHERE Offset__c > 3"));
}

TEST(SoqlSelect, EmptyStatement) {
    EXPECT_EQ(error_of(""), "the SOQL query is empty");
    EXPECT_EQ(error_of(" \n\t "), "the SOQL query is empty");
}

TEST(SoqlSelect, NotASelect) {
    EXPECT_EQ(error_of("UPDATE Account SET Name = 'x'"),
              "expected a SOQL SELECT statement, found \"UPDATE\" (at character 1)");
    EXPECT_EQ(error_of("  (SELECT Id FROM Account)"),
              "expected a SOQL SELECT statement, found \"(\" (at character 3)");
}

TEST(SoqlSelect, TrailingSemicolonRejected) {
    EXPECT_EQ(
        error_of("SELECT Id FROM Account;  \n"),
        "a trailing ';' is not allowed: SOQL takes one statement without a terminator (at character 23)");
}

TEST(SoqlSelect, SecondStatementRejected) {
    EXPECT_EQ(error_of("SELECT Id FROM Account; SELECT Id FROM Contact"),
              "';' outside a string literal: SOQL takes exactly one statement (at character 23)");
}

TEST(SoqlSelect, CommentsRejected) {
    EXPECT_EQ(error_of("SELECT Id FROM Account -- all of them"),
              "SOQL has no comments: \"--\" outside a string literal (at character 24)");
    EXPECT_EQ(error_of("SELECT Id /* key */ FROM Account"),
              "SOQL has no comments: \"/*\" outside a string literal (at character 11)");
    EXPECT_EQ(error_of("SELECT Id FROM Account // x"),
              "SOQL has no comments: \"//\" outside a string literal (at character 24)");
}

TEST(SoqlSelect, StringLiteralProblems) {
    EXPECT_EQ(error_of("SELECT Id FROM Account WHERE Name = 'abc"),
              "unterminated string literal (at character 37)");
    EXPECT_EQ(error_of("SELECT Id FROM Account WHERE Name = 'abc\\"),
              "unterminated string literal (at character 37)");
    EXPECT_EQ(error_of("SELECT Id FROM Account WHERE Name = \"x;y\""),
              "SOQL string literals use single quotes, not '\"' (at character 37)");
    EXPECT_EQ(
        error_of(R"(SELECT Id FROM Account WHERE Name = 'a\qb')"),
        R"(invalid escape "\\q" in string literal; SOQL knows \' \" \\ \n \r \t \b \f \uXXXX (and \% \_ in LIKE patterns) (at character 39))");
    EXPECT_EQ(error_of(R"(SELECT Id FROM Account WHERE Name = '\u12G4')"),
              "invalid escape in string literal: \\u needs four hex digits (at character 38)");
}

TEST(SoqlSelect, PositionCountsCharactersNotBytes) {
    // "é" is two bytes in UTF-8 but one character.
    EXPECT_EQ(
        error_of("SELECT Id FROM Account WHERE Name = '\xC3\xA9' ;"),
        "a trailing ';' is not allowed: SOQL takes one statement without a terminator (at character 41)");
}

TEST(SoqlSelect, GroupByRejected) {
    EXPECT_EQ(error_of("SELECT Industry FROM Account GROUP BY Industry"),
              "GROUP BY is not supported by Bulk API 2.0 queries (at character 30)");
    EXPECT_EQ(error_of("SELECT Industry FROM Account WHERE Name != null group by Industry"),
              "GROUP BY is not supported by Bulk API 2.0 queries (at character 49)");
}

TEST(SoqlSelect, OffsetRejected) {
    EXPECT_EQ(error_of("SELECT Id FROM Account LIMIT 10 OFFSET 20"),
              "OFFSET is not supported by Bulk API 2.0 queries (at character 33)");
    EXPECT_EQ(error_of("SELECT Id FROM Account OFFSET 0"),
              "OFFSET is not supported by Bulk API 2.0 queries (at character 24)");
}

TEST(SoqlSelect, TypeofRejected) {
    EXPECT_EQ(error_of("SELECT Id, TYPEOF What WHEN Account THEN Phone END FROM Event"),
              "TYPEOF is not supported by Bulk API 2.0 queries (at character 12)");
}

TEST(SoqlSelect, AggregatesRejected) {
    EXPECT_EQ(error_of("SELECT COUNT() FROM Account"),
              "aggregate function COUNT() is not supported by Bulk API 2.0 queries (at character 8)");
    EXPECT_EQ(error_of("SELECT Id, sum(Amount) FROM Opportunity"),
              "aggregate function sum() is not supported by Bulk API 2.0 queries (at character 12)");
    EXPECT_EQ(
        error_of("SELECT COUNT_DISTINCT(Name) FROM Account"),
        "aggregate function COUNT_DISTINCT() is not supported by Bulk API 2.0 queries (at character 8)");
}

TEST(SoqlSelect, FieldsFunctionRejected) {
    EXPECT_EQ(error_of("SELECT FIELDS(ALL) FROM Account LIMIT 200"),
              "FIELDS() is not supported by Bulk API 2.0 queries; list the fields (at character 8)");
}

TEST(SoqlSelect, OtherFunctionsInSelectListRejected) {
    EXPECT_EQ(
        error_of("SELECT Id, toLabel(Industry) FROM Account"),
        "function toLabel() in the select list is not supported; select plain field paths (at character 12)");
}

TEST(SoqlSelect, ChildSubqueryRejected) {
    EXPECT_EQ(
        error_of("SELECT Id, (SELECT LastName FROM Contacts) FROM Account"),
        "parent-to-child subqueries such as (SELECT ... FROM Contacts) are not supported by Bulk API 2.0 "
        "queries (at character 12)");
}

TEST(SoqlSelect, DuplicateFieldCaseInsensitive) {
    EXPECT_EQ(error_of("SELECT Id, Name, NAME FROM Account"),
              "field \"NAME\" is selected twice (at characters 12 and 18)");
    EXPECT_EQ(error_of("SELECT Owner.Email, owner.email FROM Account"),
              "field \"owner.email\" is selected twice (at characters 8 and 21)");
}

TEST(SoqlSelect, TwoFieldsOneColumn) {
    EXPECT_EQ(
        error_of("SELECT Owner_Email__c, Owner.Email__c FROM Account"),
        "fields \"Owner_Email__c\" and \"Owner.Email__c\" both map to column \"owner_email__c\"; select only "
        "one");
    EXPECT_EQ(
        error_of("SELECT Owner.Email, Owner_Email FROM Account"),
        "fields \"Owner.Email\" and \"Owner_Email\" both map to column \"owner_email\"; select only one");
}

TEST(SoqlSelect, ColumnLongerThanPostgresNameLimit) {
    const std::string path = "Account.Owner.Manager.Some_Really_Long_Custom_Field_Name_Here__c";
    ASSERT_GT(soql_column_name(path).size(), kMaxPgIdentifierBytes);
    EXPECT_EQ(error_of("SELECT " + path + " FROM Contact"),
              "field \"" + path + "\" maps to column name \"" + soql_column_name(path) +
                  "\", longer than PostgreSQL's 63-byte limit for names");
}

TEST(SoqlSelect, EmptySelectListAndMissingFrom) {
    EXPECT_EQ(error_of("SELECT FROM Account"),
              "the select list is empty; name at least one field (at character 8)");
    EXPECT_EQ(error_of("SELECT Id, Name"), "missing FROM clause (at character 16)");
    EXPECT_EQ(error_of("SELECT"), "the select list is empty; name at least one field (at character 7)");
    EXPECT_EQ(error_of("SELECT Id, FROM Account"),
              "expected a field after ',', found \"FROM\" (at character 12)");
}

TEST(SoqlSelect, MalformedSelectItems) {
    EXPECT_EQ(error_of("SELECT 1 FROM Account"), "expected a field name, found \"1\" (at character 8)");
    EXPECT_EQ(error_of("SELECT Id Name FROM Account"),
              "unexpected \"Name\" after field \"Id\"; expected ',' or FROM (at character 11)");
    EXPECT_EQ(error_of("SELECT Owner. FROM Account"),
              "expected a field name after '.', found \"FROM\" (at character 15)");
    EXPECT_EQ(error_of("SELECT Owner .Email FROM Account"),
              "a field path must not contain spaces around '.' (at character 14)");
    EXPECT_EQ(error_of("SELECT Bad___c FROM Account"),
              "invalid Salesforce field name \"Bad___c\": must not contain three consecutive underscores "
              "(at character 8)");
    EXPECT_EQ(error_of("SELECT Id, * FROM Account"), "expected a field name, found \"*\" (at character 12)");
}

TEST(SoqlSelect, NonAsciiNamesAreRefusedWhole) {
    EXPECT_EQ(
        error_of("SELECT Id FROM Acc\xC3\xB6unt"),
        "invalid Salesforce object name \"Acc\\xC3\\xB6unt\": contains a non-ASCII character (Salesforce API "
        "names are ASCII only) (at character 16)");
    EXPECT_EQ(
        error_of("SELECT N\xC3\xA4me FROM Account"),
        "invalid Salesforce field name \"N\\xC3\\xA4me\": contains a non-ASCII character (Salesforce API "
        "names are ASCII only) (at character 8)");
}

TEST(SoqlSelect, FromProblems) {
    EXPECT_EQ(error_of("SELECT Id FROM"),
              "expected an object name after FROM, found the end of the statement "
              "(at character 15)");
    EXPECT_EQ(error_of("SELECT Id FROM 'Account'"),
              "expected an object name after FROM, found \"'Account'\" (at character 16)");
    EXPECT_EQ(
        error_of("SELECT Id FROM Account_"),
        "invalid Salesforce object name \"Account_\": must not end with an underscore (at character 16)");
    EXPECT_EQ(
        error_of("SELECT Id FROM Account a WHERE a.Name = 'x'"),
        "unexpected \"a\" after FROM Account; object aliases are not supported, write field paths without "
        "them (at character 24)");
    EXPECT_EQ(
        error_of("SELECT Id FROM Contact, Account"),
        "FROM takes one object; relationship joins such as FROM Contact c, c.Account a are not supported "
        "(at character 23)");
    EXPECT_EQ(error_of("SELECT Id FROM Account = 3"),
              "unexpected \"=\" after FROM Account (at character 24)");
}

TEST(SoqlSelect, OtherTrailingClausesAccepted) {
    EXPECT_NO_THROW(parse_soql_select("SELECT Id FROM Account WITH SECURITY_ENFORCED"));
    EXPECT_NO_THROW(parse_soql_select("SELECT Id FROM Account LIMIT 5"));
    EXPECT_TRUE(parse_soql_select("SELECT Id FROM Account LIMIT 5").has_limit);
}

}  // namespace
}  // namespace sfb
