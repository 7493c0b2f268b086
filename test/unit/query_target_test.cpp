#include "core/query_target.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <map>

using namespace sfb;

namespace {

FieldDescribe field(std::string name, std::string type) {
    FieldDescribe f;
    f.name = std::move(name);
    f.type = std::move(type);
    return f;
}

FieldDescribe reference(std::string name, std::string relationship, std::vector<std::string> targets) {
    FieldDescribe f = field(std::move(name), "reference");
    f.relationship_name = std::move(relationship);
    f.reference_to = std::move(targets);
    return f;
}

ObjectDescribe object(std::string name, std::vector<FieldDescribe> fields) {
    ObjectDescribe o;
    o.name = std::move(name);
    o.queryable = true;
    o.fields = std::move(fields);
    return o;
}

FieldDescribe decimal(std::string name, std::string type, int precision, int scale) {
    FieldDescribe f = field(std::move(name), std::move(type));
    f.precision = precision;
    f.scale = scale;
    return f;
}

class QueryTargetTest : public ::testing::Test {
  protected:
    QueryTargetTest() {
        describes_.emplace(
            "Account",
            object("Account", {field("Id", "id"), field("Name", "string"),
                               decimal("AnnualRevenue", "currency", 18, 2), field("CreatedDate", "datetime"),
                               field("Tags__c", "multipicklist"), field("BillingAddress", "address"),
                               field("Order", "string"), reference("OwnerId", "Owner", {"User"}),
                               reference("WhoId", "Who", {"Contact", "Lead"})}));
        describes_.emplace("User", object("User", {field("Id", "id"), field("Email", "email")}));
    }

    QueryColumns plan(const std::string &soql) {
        SoqlSelect select = parse_soql_select(soql);
        DescribeLookup lookup = [this](std::string_view name) -> const ObjectDescribe * {
            asked_.push_back(std::string(name));
            auto found = describes_.find(std::string(name));
            return found == describes_.end() ? nullptr : &found->second;
        };
        return plan_query_columns(select, &describes_.at("Account"), lookup);
    }

    std::string refusal(const std::string &soql) {
        try {
            plan(soql);
        } catch (const Error &e) {
            EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
            return e.what();
        }
        return "(accepted)";
    }

    std::map<std::string, ObjectDescribe> describes_;
    std::vector<std::string> asked_;
};

TEST_F(QueryTargetTest, ColumnsFollowTheSelectListWithTheMappedTypes) {
    QueryColumns p = plan("SELECT Id, Name, AnnualRevenue, CreatedDate, Tags__c, Owner.Email FROM account");
    EXPECT_EQ(p.object, "Account");  // the describe's spelling
    EXPECT_TRUE(p.selects_id);
    ASSERT_EQ(p.columns.size(), 6u);
    EXPECT_EQ(p.columns[0].column, "id");
    EXPECT_EQ(p.columns[0].type.ddl(), "text COLLATE \"C\"");
    EXPECT_EQ(p.columns[2].type.sql, "numeric(18,2)");
    EXPECT_EQ(p.columns[3].type.sql, "timestamp with time zone");
    EXPECT_TRUE(p.columns[4].type.is_array);
    EXPECT_EQ(p.columns[5].path, "Owner.Email");
    EXPECT_EQ(p.columns[5].column, "owner_email");
    ASSERT_TRUE(p.columns[5].field.has_value());
    EXPECT_EQ(p.columns[5].field->type, "email");
    // Only the object the relationship reaches is asked for (possibly more than once: the lookup caches).
    ASSERT_FALSE(asked_.empty());
    for (const std::string &name : asked_)
        EXPECT_EQ(name, "User");
}

TEST_F(QueryTargetTest, CreateTableQuotesEveryColumnAndKeysOnId) {
    QueryColumns p = plan("SELECT Id, Order, Owner.Email FROM Account");
    EXPECT_EQ(create_table_statement(p, "crm.accounts"),
              "CREATE TABLE crm.accounts (\"id\" text COLLATE \"C\", \"order\" text, \"owner_email\" text, "
              "PRIMARY KEY (\"id\"))");
    QueryColumns no_id = plan("SELECT Name FROM Account");
    EXPECT_FALSE(no_id.selects_id);
    EXPECT_EQ(create_table_statement(no_id, "t"), "CREATE TABLE t (\"name\" text)");
}

TEST_F(QueryTargetTest, UnknownFieldsOfferTheClosestNames) {
    EXPECT_EQ(refusal("SELECT Id, Nmae FROM Account"), "Account has no field \"Nmae\"; did you mean Name?");
    EXPECT_EQ(refusal("SELECT Id, Zzzzzzzzzz FROM Account"), "Account has no field \"Zzzzzzzzzz\"");
    EXPECT_EQ(refusal("SELECT Owner.Emial FROM Account"),
              "User has no field \"Emial\" (in field path \"Owner.Emial\")");
    EXPECT_EQ(refusal("SELECT Ownr.Email FROM Account"),
              "Account has no relationship \"Ownr\" (in field path \"Ownr.Email\")");
}

TEST_F(QueryTargetTest, FieldsBulkQueriesDoNotReturnAreRefused) {
    EXPECT_EQ(
        refusal("SELECT Id, BillingAddress FROM Account"),
        "Bulk API 2.0 query jobs do not return address field Account.BillingAddress; select its component "
        "fields instead");
}

TEST_F(QueryTargetTest, AnObjectThatCannotBeQueriedIsRefused) {
    describes_.at("Account").queryable = false;
    EXPECT_EQ(refusal("SELECT Id FROM Account"),
              "Account cannot be queried (its describe says queryable: false)");
}

TEST_F(QueryTargetTest, PolymorphicPathsAreLeftToSalesforceAsText) {
    QueryColumns p = plan("SELECT Id, Who.Name FROM Account");
    EXPECT_FALSE(p.columns[1].field.has_value());
    EXPECT_EQ(p.columns[1].type.sql, "text");
    EXPECT_EQ(p.columns[1].column, "who_name");
}

TEST_F(QueryTargetTest, WithoutADescribeEveryColumnIsUncheckedText) {
    SoqlSelect select = parse_soql_select("SELECT Id, Whatever__c FROM Anything__c");
    QueryColumns p = plan_query_columns(select, nullptr, nullptr);
    EXPECT_EQ(p.object, "Anything__c");
    ASSERT_EQ(p.columns.size(), 2u);
    EXPECT_FALSE(p.columns[1].field.has_value());
    EXPECT_EQ(p.columns[1].type.sql, "text");
}

TEST_F(QueryTargetTest, AnExistingTableIsCheckedColumnByColumn) {
    QueryColumns p = plan("SELECT Id, Name, AnnualRevenue, CreatedDate FROM Account");
    TargetFacts fits{"crm.a",
                     {{"id", "character varying(18)"},
                      {"name", "text"},
                      {"annualrevenue", "numeric"},
                      {"createddate", "timestamp with time zone"},
                      {"extra", "integer"}},
                     true};
    EXPECT_TRUE(check_query_target(p, fits, LoadMode::Merge).empty());

    TargetFacts bad{"crm.a",
                    {{"id", "text"},
                     {"name", "integer"},
                     {"annualrevenue", "numeric(5,2)"},
                     {"createddate", "text", true, false}},
                    false};
    std::vector<std::string> problems = check_query_target(p, bad, LoadMode::Append);
    ASSERT_EQ(problems.size(), 3u);
    EXPECT_NE(problems[0].find("column \"name\" of crm.a: a column of type \"integer\" cannot receive"),
              std::string::npos)
        << problems[0];
    EXPECT_NE(problems[1].find("\"annualrevenue\""), std::string::npos) << problems[1];
    EXPECT_EQ(problems[2],
              "column \"createddate\" of crm.a is a generated column; field CreatedDate cannot be "
              "loaded into it");

    TargetFacts missing{"crm.a", {{"id", "text"}}, false};
    problems = check_query_target(p, missing, LoadMode::Merge);
    ASSERT_EQ(problems.size(), 4u);
    EXPECT_EQ(problems[0], "field Name has no column \"name\" in crm.a");
    EXPECT_EQ(problems[3], "mode 'merge' needs a primary key or unique index on exactly (id) of crm.a");
}

TEST_F(QueryTargetTest, MergeNeedsTheIdSelected) {
    QueryColumns p = plan("SELECT Name FROM Account");
    TargetFacts t{"t", {{"id", "text"}, {"name", "text"}}, true};
    EXPECT_EQ(check_query_target(p, t, LoadMode::Merge),
              std::vector<std::string>{"mode 'merge' matches rows by id: select Id"});
    EXPECT_TRUE(check_query_target(p, t, LoadMode::Replace).empty());
}

TEST(LoadModeTest, NamesAreExactAndRoundTrip) {
    for (LoadMode m : {LoadMode::Append, LoadMode::Replace, LoadMode::Merge})
        EXPECT_EQ(parse_load_mode(to_string(m)), m);
    EXPECT_THROW(parse_load_mode("Append"), Error);
    EXPECT_THROW(parse_load_mode(""), Error);
}

}  // namespace
