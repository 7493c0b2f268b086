#include "core/ingest_preflight.h"

#include <gtest/gtest.h>

#include <map>

using namespace sfb;

namespace {

FieldDescribe field(std::string name, std::string type, bool createable = true, bool updateable = true) {
    FieldDescribe f;
    f.name = std::move(name);
    f.type = std::move(type);
    f.createable = createable;
    f.updateable = updateable;
    return f;
}

FieldDescribe required(std::string name, std::string type) {
    FieldDescribe f = field(std::move(name), std::move(type));
    f.nillable = false;
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
    o.queryable = o.createable = o.updateable = o.deletable = true;
    o.fields = std::move(fields);
    return o;
}

ObjectDescribe contact() {
    FieldDescribe id = field("Id", "id", false, false);
    id.id_lookup = true;
    id.nillable = false;
    FieldDescribe email = field("Email", "email");
    email.id_lookup = true;
    FieldDescribe ext = field("External_Id__c", "string");
    ext.external_id = true;
    FieldDescribe owner = reference("OwnerId", "Owner", {"User"});
    owner.nillable = false;
    owner.defaulted_on_create = true;
    FieldDescribe formula = field("Score__c", "double", false, false);
    formula.calculated = true;
    FieldDescribe amount = field("Amount__c", "currency");
    amount.precision = 18;
    amount.scale = 2;
    FieldDescribe street = field("MailingStreet", "textarea");
    street.compound_field_name = "MailingAddress";
    FieldDescribe city = field("MailingCity", "string");
    city.compound_field_name = "MailingAddress";
    FieldDescribe done = field("Done__c", "boolean");
    done.nillable = false;
    done.defaulted_on_create = false;
    return object("Contact",
                  {id, required("LastName", "string"), field("FirstName", "string"), email, ext, owner,
                   reference("AccountId", "Account", {"Account"}),
                   reference("WhatId", "What", {"Account", "Opportunity"}), formula, amount,
                   field("Birthdate", "date"), field("LastSeen__c", "datetime"), field("Opens__c", "time"),
                   field("Count__c", "int"), field("Tags__c", "multipicklist"), done, street, city,
                   field("MailingAddress", "address", false, false)});
}

ObjectDescribe account() {
    FieldDescribe id = field("Id", "id", false, false);
    id.id_lookup = true;
    FieldDescribe ext = field("Account_Ext__c", "string");
    ext.external_id = true;
    return object("Account", {id, field("Name", "string"), ext});
}

SourceColumn text(std::string name) {
    return SourceColumn{std::move(name), "text", SourceKind::Text};
}

SourceColumn typed(std::string name, SourceKind kind, std::string pg_type, int precision = -1,
                   int scale = -1) {
    return SourceColumn{std::move(name), std::move(pg_type), kind, precision, scale};
}

DescribeLookup lookup_of(const std::map<std::string, ObjectDescribe> &objects) {
    return [&objects](std::string_view name) -> const ObjectDescribe * {
        auto it = objects.find(std::string(name));
        return it == objects.end() ? nullptr : &it->second;
    };
}

struct Preflight : ::testing::Test {
    ObjectDescribe c = contact();
    std::map<std::string, ObjectDescribe> others{{"Account", account()}};

    PreflightReport run(Operation op, std::vector<SourceColumn> columns,
                        std::optional<std::string> external_id = std::nullopt) {
        return preflight_ingest(op, c, external_id, columns, lookup_of(others));
    }
};

}  // namespace

TEST_F(Preflight, AGoodInsertPasses) {
    PreflightReport r = run(Operation::Insert, {text("LastName"), text("Email"),
                                                typed("Done__c", SourceKind::Boolean, "boolean")});
    EXPECT_EQ(r.errors, std::vector<std::string>{});
    EXPECT_EQ(r.warnings, std::vector<std::string>{});
}

TEST_F(Preflight, UnknownFieldOffersTheClosestNames) {
    PreflightReport r = run(Operation::Insert, {text("LastName"), text("Emial")});
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0], "Contact has no field \"Emial\" (did you mean Email?)");
    r = run(Operation::Insert, {text("LastName"), text("Zzzzzzzz")});
    EXPECT_EQ(r.errors[0], "Contact has no field \"Zzzzzzzz\"");
}

TEST_F(Preflight, FieldNamesAreCaseInsensitive) {
    EXPECT_TRUE(run(Operation::Insert, {text("lastname"), text("EMAIL")}).errors.empty());
}

TEST_F(Preflight, IdOnInsertIsRefusedAndNeededForUpdate) {
    PreflightReport r = run(Operation::Insert, {text("Id"), text("LastName")});
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0],
              "insert cannot send Id: Salesforce assigns it (update or upsert change records that exist)");
    EXPECT_TRUE(run(Operation::Update, {text("Id"), text("FirstName")}).errors.empty());
    EXPECT_TRUE(run(Operation::Delete, {text("Id")}).errors.empty());
}

TEST_F(Preflight, ReadOnlyFields) {
    PreflightReport r =
        run(Operation::Insert, {text("LastName"), typed("Score__c", SourceKind::Float, "double precision")});
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0],
              "column \"Score__c\": Contact.Score__c cannot be set on insert (it is not createable for "
              "the server's Salesforce user)");
    r = run(Operation::Update, {text("Id"), typed("Score__c", SourceKind::Float, "double precision")});
    EXPECT_EQ(r.errors[0],
              "column \"Score__c\": Contact.Score__c cannot be changed by update (it is not updateable "
              "for the server's Salesforce user)");
}

TEST_F(Preflight, UpsertWarnsForFieldsSettableOneWayOnly) {
    c.fields.push_back(field("CreateOnly__c", "string", true, false));
    PreflightReport r =
        run(Operation::Upsert, {text("External_Id__c"), text("CreateOnly__c")}, "External_Id__c");
    EXPECT_TRUE(r.errors.empty());
    // LastName is required, but only for the records the upsert creates: Salesforce refuses those row by row.
    EXPECT_EQ(r.warnings,
              std::vector<std::string>{
                  "Contact.CreateOnly__c is not updateable: records the upsert updates keep theirs"});
}

TEST_F(Preflight, ExternalIdMustBeOne) {
    PreflightReport r = run(Operation::Upsert, {text("FirstName"), text("LastName")}, "FirstName");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0],
              "external_id \"FirstName\" is not an external id field of Contact (its external ids and "
              "idLookup fields: Id, Email, External_Id__c)");
    r = run(Operation::Upsert, {text("External_Id_c"), text("LastName")}, "External_Id_c");
    EXPECT_EQ(r.errors[0],
              "external_id \"External_Id_c\" is not a field of Contact (did you mean External_Id__c?)");
    EXPECT_TRUE(run(Operation::Upsert, {text("Email"), text("LastName")}, "Email").errors.empty());
}

TEST_F(Preflight, RequiredFieldsOnInsert) {
    PreflightReport r = run(Operation::Insert, {text("FirstName")});
    ASSERT_EQ(r.errors.size(), 1u);
    // OwnerId is defaulted on create, Done__c a boolean (never null, false by default): not required.
    EXPECT_EQ(r.errors[0], "insert does not send the required field of Contact: LastName");
}

TEST_F(Preflight, RelationshipColumns) {
    EXPECT_TRUE(run(Operation::Insert, {text("LastName"), text("Account.Account_Ext__c")}).errors.empty());
    PreflightReport r = run(Operation::Insert, {text("LastName"), text("Acount.Account_Ext__c")});
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0],
              "column \"Acount.Account_Ext__c\": Contact has no relationship \"Acount\" (did you mean "
              "Account?)");
    r = run(Operation::Insert, {text("LastName"), text("Account.Name")});
    EXPECT_EQ(r.errors[0],
              "column \"Account.Name\": Account.Name cannot find the Account to link: it is not an "
              "external id or idLookup field (those of Account: Id, Account_Ext__c)");
    r = run(Operation::Insert, {text("LastName"), text("Account.Nmae")});
    EXPECT_EQ(r.errors[0], "column \"Account.Nmae\": Account has no field \"Nmae\" (did you mean Name?)");
}

TEST_F(Preflight, PolymorphicRelationshipsNameTheirTarget) {
    PreflightReport r = run(Operation::Insert, {text("LastName"), text("What.Account_Ext__c")});
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0],
              "column \"What.Account_Ext__c\": Contact.WhatId points to several objects (Account, "
              "Opportunity): name the one meant, as \"Account:What.Account_Ext__c\" or "
              "\"Opportunity:What.Account_Ext__c\"");
    EXPECT_TRUE(
        run(Operation::Insert, {text("LastName"), text("Account:What.Account_Ext__c")}).errors.empty());
    EXPECT_TRUE(
        run(Operation::Insert, {text("LastName"), text("What:Account.Account_Ext__c")}).errors.empty());
    r = run(Operation::Insert, {text("LastName"), text("Lead:What.Account_Ext__c")});
    EXPECT_EQ(r.errors[0],
              "column \"Lead:What.Account_Ext__c\": Contact.WhatId does not point to \"Lead\" (it points "
              "to Account, Opportunity)");
    EXPECT_EQ(preflight_referenced_objects(
                  c, {text("Account:What.Account_Ext__c"), text("Account.Account_Ext__c")}),
              std::vector<std::string>{"Account"});
}

TEST_F(Preflight, MissingDescribeOfATargetIsAnError) {
    others.clear();
    PreflightReport r = run(Operation::Insert, {text("LastName"), text("Account.Account_Ext__c")});
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0], "column \"Account.Account_Ext__c\": the describe of Account is not available");
}

TEST_F(Preflight, CompoundFieldsAreWrittenByTheirParts) {
    PreflightReport r = run(Operation::Insert, {text("LastName"), text("MailingAddress")});
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0],
              "Contact.MailingAddress is a compound field and cannot be written; send its parts "
              "(MailingStreet, MailingCity) instead");
}

TEST_F(Preflight, ColumnTypesThatCannotHoldTheFieldsValues) {
    PreflightReport r = run(
        Operation::Insert,
        {text("LastName"), typed("Birthdate", SourceKind::Boolean, "boolean"),
         typed("Done__c", SourceKind::Integer, "integer"), typed("AccountId", SourceKind::Integer, "bigint"),
         typed("Birthdate", SourceKind::TimestampTz, "timestamp with time zone"),
         typed("Count__c", SourceKind::Date, "date"), typed("Email", SourceKind::TextArray, "text[]"),
         typed("Opens__c", SourceKind::Date, "date")});
    ASSERT_EQ(r.errors.size(), 7u);
    EXPECT_EQ(r.errors[0],
              "column \"Birthdate\" is a boolean column (boolean) but Contact.Birthdate is a date "
              "field: send a date");
    EXPECT_EQ(r.errors[1],
              "column \"Done__c\" is an integer column (integer) but Contact.Done__c is a boolean "
              "field: send a boolean");
    EXPECT_EQ(r.errors[2],
              "column \"AccountId\" is an integer column (bigint) but Contact.AccountId is a reference "
              "field: send record ids as text");
    EXPECT_EQ(r.errors[3],
              "column \"Birthdate\" is a timestamptz column (timestamp with time zone) but "
              "Contact.Birthdate is a date field: cast it to date (the time of day would have to be "
              "dropped)");
    EXPECT_EQ(r.errors[4],
              "column \"Count__c\" is a date column (date) but Contact.Count__c is an int field: send a "
              "number");
    EXPECT_EQ(r.errors[5],
              "column \"Email\" is an array column (text[]) but Contact.Email is an email field: arrays "
              "go only to multipicklist fields");
    EXPECT_EQ(r.errors[6],
              "column \"Opens__c\" is a date column (date) but Contact.Opens__c is a time field: send a "
              "time");
}

TEST_F(Preflight, ColumnTypesThatFit) {
    PreflightReport r =
        run(Operation::Insert,
            {text("LastName"), typed("Tags__c", SourceKind::TextArray, "text[]"),
             typed("Amount__c", SourceKind::Numeric, "numeric(12,2)", 12, 2),
             typed("Count__c", SourceKind::Integer, "integer"),
             typed("LastSeen__c", SourceKind::TimestampTz, "timestamp with time zone"),
             typed("FirstName", SourceKind::Integer, "integer"), typed("Birthdate", SourceKind::Date, "date"),
             typed("Opens__c", SourceKind::Time, "time")});
    EXPECT_EQ(r.errors, std::vector<std::string>{});
    EXPECT_EQ(r.warnings, std::vector<std::string>{});
}

TEST_F(Preflight, LossyColumnTypesWarn) {
    PreflightReport r = run(
        Operation::Insert, {text("LastName"), typed("Amount__c", SourceKind::Numeric, "numeric(12,4)", 12, 4),
                            typed("Count__c", SourceKind::Float, "double precision"),
                            typed("LastSeen__c", SourceKind::Timestamp, "timestamp without time zone")});
    EXPECT_TRUE(r.errors.empty());
    ASSERT_EQ(r.warnings.size(), 3u);
    EXPECT_EQ(r.warnings[0],
              "column \"Amount__c\" (numeric(12,4)) has 4 decimal places but Contact.Amount__c keeps 2: "
              "Salesforce rounds the values");
    EXPECT_EQ(r.warnings[1],
              "column \"Count__c\" (double precision) goes to Contact.Count__c, a whole-number field: "
              "Salesforce refuses values with decimals");
    EXPECT_EQ(r.warnings[2],
              "column \"LastSeen__c\" is a timestamp without time zone: its values are sent as UTC to "
              "Contact.LastSeen__c");
}

TEST_F(Preflight, ObjectLevelPermissions) {
    c.createable = false;
    c.deletable = false;
    EXPECT_EQ(run(Operation::Insert, {text("LastName")}).errors,
              std::vector<std::string>{
                  "Contact records cannot be created by the server's Salesforce user (the object "
                  "is not createable)"});
    EXPECT_EQ(run(Operation::HardDelete, {text("Id")}).errors,
              std::vector<std::string>{
                  "Contact records cannot be deleted by the server's Salesforce user (the object "
                  "is not deletable)"});
}

TEST_F(Preflight, EveryProblemIsReported) {
    PreflightReport r = run(Operation::Insert, {text("Id"), text("Nope"), text("Acount.X")});
    EXPECT_EQ(r.errors.size(), 4u);  // Id, Nope, Acount, and LastName missing
}

TEST(ClosestNames, BestFirstAndBounded) {
    std::vector<std::string> names{"LastName", "FirstName", "Email", "LeadSource", "Name"};
    EXPECT_EQ(closest_names("lastnam", names), (std::vector<std::string>{"LastName"}));
    EXPECT_EQ(closest_names("Nme", names), (std::vector<std::string>{"Name"}));
    EXPECT_EQ(closest_names("Completely_Different__c", names), std::vector<std::string>{});
    EXPECT_EQ(closest_names("Naem", {"Name", "Name"}), (std::vector<std::string>{"Name"}));
}
