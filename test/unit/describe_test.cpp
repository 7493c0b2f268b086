#include "core/describe.h"

#include "core/error.h"
#include "core/soql_select.h"
#include "core/type_map.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace sfb {
namespace {

// Shapes follow docs/soql-and-rest.md §3.1/§3.2 (keys as a real org sends them, trimmed to what matters plus
// a few unknown ones that must be ignored).
const char *const kGlobal = R"json({"encoding":"UTF-8","maxBatchSize":200,
 "sobjects":[
  {"activateable":false,"createable":true,"custom":false,"customSetting":false,"deletable":true,
   "deprecatedAndHidden":false,"feedEnabled":true,"keyPrefix":"001","label":"Account","labelPlural":"Accounts",
   "layoutable":true,"mergeable":true,"name":"Account","queryable":true,"replicateable":true,
   "retrieveable":true,"searchable":true,"triggerable":true,"undeletable":true,"updateable":true,
   "associateEntityType":null,"hasSubtypes":false,
   "urls":{"sobject":"/services/data/v62.0/sobjects/Account"}},
  {"name":"AccountChangeEvent","queryable":false,"keyPrefix":null,"custom":false,"label":"Account Change Event"},
  {"name":"Invoice__c","queryable":true,"custom":true,"keyPrefix":"a01","replicateable":false}
 ]})json";

TEST(DescribeGlobal, ParsesEntriesAndIgnoresUnknownKeys) {
    const GlobalDescribe g = parse_describe_global(kGlobal);
    EXPECT_EQ(g.encoding, "UTF-8");
    EXPECT_EQ(g.max_batch_size, 200);
    ASSERT_EQ(g.sobjects.size(), 3u);
    const SObjectSummary &a = g.sobjects[0];
    EXPECT_EQ(a.name, "Account");
    EXPECT_EQ(a.label, "Account");
    EXPECT_EQ(a.label_plural, "Accounts");
    EXPECT_EQ(a.key_prefix, "001");
    EXPECT_TRUE(a.queryable);
    EXPECT_TRUE(a.replicateable);
    EXPECT_TRUE(a.retrieveable);
    EXPECT_FALSE(a.custom);
    EXPECT_FALSE(a.custom_setting);
    EXPECT_TRUE(a.createable && a.updateable && a.deletable && a.searchable);
    EXPECT_FALSE(a.deprecated_and_hidden);
    EXPECT_EQ(g.sobjects[1].key_prefix, "");  // null
    EXPECT_FALSE(g.sobjects[1].queryable);
    EXPECT_TRUE(g.sobjects[2].custom);
    EXPECT_FALSE(g.sobjects[2].replicateable);
    ASSERT_NE(g.find("invoice__C"), nullptr);
    EXPECT_EQ(g.find("invoice__C")->name, "Invoice__c");
    EXPECT_EQ(g.find("Nope"), nullptr);
}

std::string error_of(void (*f)(const std::string &), const std::string &text) {
    try {
        f(text);
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::ExternalService);
        return e.what();
    }
    return "";
}
void global(const std::string &t) {
    parse_describe_global(t);
}
void object(const std::string &t) {
    parse_sobject_describe(t);
}

TEST(DescribeGlobal, StrictAboutRequiredKeys) {
    EXPECT_EQ(error_of(global, "[]"), "describeGlobal answer is not a JSON object");
    EXPECT_EQ(error_of(global, "{not json"), "describeGlobal answer is not a JSON object");
    EXPECT_EQ(error_of(global, R"({"encoding":"UTF-8"})"),
              "describeGlobal answer lacks the required key \"sobjects\"");
    EXPECT_EQ(error_of(global, R"({"sobjects":{}})"),
              "describeGlobal answer has \"sobjects\" that is not an array");
    EXPECT_EQ(error_of(global, R"({"sobjects":[{"label":"X","queryable":true}]})"),
              "describeGlobal sobjects[0] lacks the required key \"name\"");
    EXPECT_EQ(error_of(global, R"({"sobjects":[{"name":"Account","queryable":true},{"name":"Foo__c"}]})"),
              "describeGlobal sobjects[1] (\"Foo__c\") lacks the required key \"queryable\"");
    EXPECT_EQ(error_of(global, R"({"sobjects":[{"name":"Foo__c","queryable":"yes"}]})"),
              "describeGlobal sobjects[0] (\"Foo__c\") has \"queryable\" that is not a boolean");
    EXPECT_EQ(error_of(global, R"({"sobjects":[7]})"), "describeGlobal sobjects[0] is not a JSON object");
}

// A Contact describe as an org sends it (trimmed): polymorphic OwnerId, a compound address with its
// components, a formula, a picklist with an inactive value, child relationships.
const char *const kContact =
    R"json({"name":"Contact","label":"Contact","labelPlural":"Contacts","keyPrefix":"003",
 "queryable":true,"custom":false,"replicateable":true,"createable":true,"updateable":true,"deletable":true,
 "childRelationships":[
   {"cascadeDelete":true,"childSObject":"Case","deprecatedAndHidden":false,"field":"ContactId",
    "relationshipName":"Cases","restrictedDelete":false},
   {"cascadeDelete":false,"childSObject":"ContactFeed","field":"ParentId","relationshipName":null}],
 "recordTypeInfos":[],
 "fields":[
  {"name":"Id","label":"Contact ID","type":"id","soapType":"tns:ID","length":18,"byteLength":18,"precision":0,
   "scale":0,"digits":0,"nillable":false,"idLookup":true,"caseSensitive":false,"filterable":true,"sortable":true,
   "groupable":true,"aggregatable":true,"calculated":false,"custom":false,"referenceTo":[],"relationshipName":null,
   "picklistValues":[],"compoundFieldName":null,"extraTypeInfo":null,"permissionable":false},
  {"name":"OwnerId","label":"Owner ID","type":"reference","soapType":"tns:ID","length":18,"nillable":false,
   "referenceTo":["Group","User"],"relationshipName":"Owner","namePointing":true,"polymorphicForeignKey":true,
   "filterable":true,"sortable":true,"groupable":true,"defaultedOnCreate":true,"createable":true,"updateable":true},
  {"name":"AccountId","label":"Account ID","type":"reference","soapType":"tns:ID","length":18,"nillable":true,
   "referenceTo":["Account"],"relationshipName":"Account","filterable":true},
  {"name":"LastName","type":"string","soapType":"xsd:string","length":80,"byteLength":240,"nillable":false,
   "nameField":false,"filterable":true,"sortable":true,"groupable":true,"createable":true},
  {"name":"Name","type":"string","length":121,"nameField":true,"calculated":false,"createable":false},
  {"name":"MailingStreet","type":"textarea","length":255,"compoundFieldName":"MailingAddress"},
  {"name":"MailingCity","type":"string","length":40,"compoundFieldName":"MailingAddress"},
  {"name":"MailingAddress","type":"address","soapType":"urn:address","nillable":true,"filterable":false},
  {"name":"LeadSource","type":"picklist","length":255,"restrictedPicklist":false,"dependentPicklist":false,
   "picklistValues":[{"active":true,"defaultValue":false,"label":"Web","validFor":null,"value":"Web"},
                     {"active":false,"defaultValue":false,"label":"Fax","validFor":null,"value":"Fax"},
                     {"active":true,"defaultValue":false,"label":"Other","validFor":null,"value":"Other"}]},
  {"name":"Score__c","type":"double","soapType":"xsd:double","precision":18,"scale":2,"custom":true,
   "calculated":true,"calculatedFormula":"1+1","groupable":false,"aggregatable":true,"externalId":false},
  {"name":"Legacy_Key__c","type":"string","length":40,"externalId":true,"idLookup":true,"unique":true,
   "caseSensitive":true,"custom":true,"encrypted":false,"htmlFormatted":false,"deprecatedAndHidden":false,
   "autoNumber":false}
 ]})json";

TEST(DescribeObject, ParsesObjectFieldsAndChildRelationships) {
    const ObjectDescribe d = parse_sobject_describe(kContact);
    EXPECT_EQ(d.name, "Contact");
    EXPECT_TRUE(d.queryable);
    EXPECT_TRUE(d.replicateable);
    EXPECT_EQ(d.key_prefix, "003");
    ASSERT_EQ(d.fields.size(), 11u);
    ASSERT_EQ(d.child_relationships.size(), 2u);
    EXPECT_EQ(d.child_relationships[0].child_sobject, "Case");
    EXPECT_EQ(d.child_relationships[0].field, "ContactId");
    EXPECT_EQ(d.child_relationships[0].relationship_name, "Cases");
    EXPECT_TRUE(d.child_relationships[0].cascade_delete);
    EXPECT_EQ(d.child_relationships[1].relationship_name, "");

    const FieldDescribe &id = d.fields[0];
    EXPECT_EQ(id.type, "id");
    EXPECT_EQ(id.soap_type, "tns:ID");
    EXPECT_EQ(id.length, 18);
    EXPECT_FALSE(id.nillable);
    EXPECT_TRUE(id.id_lookup);
    EXPECT_TRUE(id.filterable && id.sortable && id.groupable && id.aggregatable);
    EXPECT_EQ(id.relationship_name, "");
    EXPECT_EQ(id.compound_field_name, "");

    const FieldDescribe *owner = d.find_field("ownerid");
    ASSERT_NE(owner, nullptr);
    EXPECT_EQ(owner->reference_to, (std::vector<std::string>{"Group", "User"}));
    EXPECT_EQ(owner->relationship_name, "Owner");
    EXPECT_TRUE(owner->name_pointing);
    EXPECT_TRUE(owner->polymorphic_foreign_key);
    EXPECT_TRUE(owner->defaulted_on_create);
    EXPECT_EQ(d.find_relationship("OWNER"), owner);

    EXPECT_EQ(d.find_field("MailingCity")->compound_field_name, "MailingAddress");
    EXPECT_EQ(d.find_field("MailingAddress")->soap_type, "urn:address");
    EXPECT_EQ(d.find_field("LeadSource")->picklist_values, (std::vector<std::string>{"Web", "Other"}));
    EXPECT_TRUE(d.find_field("Name")->name_field);

    const FieldDescribe *score = d.find_field("score__c");
    ASSERT_NE(score, nullptr);
    EXPECT_EQ(score->precision, 18);
    EXPECT_EQ(score->scale, 2);
    EXPECT_TRUE(score->calculated);
    EXPECT_TRUE(score->custom);
    EXPECT_FALSE(score->groupable);

    const FieldDescribe *key = d.find_field("Legacy_Key__c");
    EXPECT_TRUE(key->external_id && key->id_lookup && key->unique && key->case_sensitive);
    EXPECT_EQ(d.find_field("Nope"), nullptr);
    EXPECT_EQ(d.find_relationship("Cases"), nullptr);  // a child relationship, not a parent path
}

TEST(DescribeObject, MissingOptionalKeysTakeConservativeDefaults) {
    const ObjectDescribe d = parse_sobject_describe(
        R"({"name":"X__c","queryable":true,"fields":[{"name":"A__c","type":"string"}]})");
    const FieldDescribe &f = d.fields.at(0);
    EXPECT_TRUE(f.nillable);
    EXPECT_FALSE(f.filterable || f.sortable || f.groupable || f.aggregatable);
    EXPECT_EQ(f.length, 0);
    EXPECT_TRUE(f.reference_to.empty());
    EXPECT_TRUE(d.child_relationships.empty());
}

TEST(DescribeObject, EmulatorShapeParses) {
    // What test/emulator serves (store.py Field.describe): no groupable/aggregatable/compoundFieldName.
    const ObjectDescribe d =
        parse_sobject_describe(R"({"name":"Account","label":"Account","labelPlural":"Accounts",
      "keyPrefix":"001","custom":false,"createable":true,"updateable":true,"deletable":true,"queryable":true,
      "searchable":true,"urls":{},"childRelationships":[],"recordTypeInfos":[],"activateable":false,
      "fields":[{"name":"AnnualRevenue","label":"Annual Revenue","type":"currency","length":0,"precision":18,
      "scale":0,"digits":0,"byteLength":0,"soapType":"xsd:double","nillable":true,"createable":true,
      "updateable":true,"defaultedOnCreate":false,"defaultValue":null,"externalId":false,"unique":false,
      "caseSensitive":false,"idLookup":false,"filterable":true,"sortable":true,"calculated":false,"custom":false,
      "picklistValues":[],"restrictedPicklist":false,"referenceTo":[],"relationshipName":null,
      "polymorphicForeignKey":false}]})");
    EXPECT_EQ(d.fields.at(0).type, "currency");
    EXPECT_EQ(d.fields.at(0).precision, 18);
    EXPECT_FALSE(d.fields.at(0).groupable);
}

TEST(DescribeObject, StrictAboutRequiredKeysAndTypes) {
    EXPECT_EQ(error_of(object, R"({"queryable":true,"fields":[]})"),
              "sObject describe lacks the required key \"name\"");
    EXPECT_EQ(error_of(object, R"({"name":"Account","queryable":true})"),
              "sObject describe of \"Account\" lacks the required key \"fields\"");
    EXPECT_EQ(error_of(object, R"({"name":"Account","queryable":true,"fields":[{"type":"string"}]})"),
              "sObject describe of \"Account\" fields[0] lacks the required key \"name\"");
    EXPECT_EQ(error_of(object, R"({"name":"Account","queryable":true,"fields":[{"name":"Name"}]})"),
              "sObject describe of \"Account\" fields[0] (\"Name\") lacks the required key \"type\"");
    EXPECT_EQ(error_of(object, R"({"name":"Account","queryable":true,"fields":[{"name":"Name","type":"string",
              "length":"80"}]})"),
              "sObject describe of \"Account\" fields[0] (\"Name\") has \"length\" that is not an integer");
    EXPECT_EQ(error_of(object, R"({"name":"Account","queryable":true,"fields":[{"name":"T","type":"picklist",
              "picklistValues":[{"active":true,"label":"x"}]}]})"),
              "sObject describe of \"Account\" fields[0] (\"T\") picklistValues[0] lacks the required key "
              "\"value\"");
    EXPECT_EQ(
        error_of(object, R"({"name":"Account","queryable":true,"fields":[{"name":"OwnerId","type":"reference",
              "referenceTo":"User"}]})"),
        "sObject describe of \"Account\" fields[0] (\"OwnerId\") has \"referenceTo\" that is not an array");
    EXPECT_EQ(
        error_of(object,
                 R"({"name":"Account","queryable":true,"fields":[],"childRelationships":[{"field":"X"}]})"),
        "sObject describe of \"Account\" childRelationships[0] lacks the required key \"childSObject\"");
}

TEST(DescribeObject, WholeNumberInFloatFormIsAnInteger) {
    const ObjectDescribe d = parse_sobject_describe(
        R"({"name":"X__c","queryable":true,"fields":[{"name":"N__c","type":"double","precision":18.0,"scale":2}]})");
    EXPECT_EQ(d.fields.at(0).precision, 18);
    EXPECT_EQ(
        error_of(object,
                 R"({"name":"X","queryable":true,"fields":[{"name":"N","type":"double","scale":2.5}]})"),
        "sObject describe of \"X\" fields[0] (\"N\") has \"scale\" that is not an integer");
}

// ---- path resolution ----

class DescribeResolve : public ::testing::Test {
  protected:
    void SetUp() override {
        objects_["Contact"] = parse_sobject_describe(kContact);
        objects_["Account"] = parse_sobject_describe(R"({"name":"Account","queryable":true,"fields":[
            {"name":"Id","type":"id"},{"name":"Name","type":"string","length":255},
            {"name":"OwnerId","type":"reference","referenceTo":["User"],"relationshipName":"Owner"},
            {"name":"ParentId","type":"reference","referenceTo":["Account"],"relationshipName":"Parent"},
            {"name":"Region__c","type":"reference","referenceTo":["Region__c"],"relationshipName":"Region__r"}]})");
        objects_["User"] = parse_sobject_describe(R"({"name":"User","queryable":true,"fields":[
            {"name":"Id","type":"id"},{"name":"Email","type":"email","length":128},
            {"name":"ManagerId","type":"reference","referenceTo":["User"],"relationshipName":"Manager"}]})");
        lookup_ = [this](std::string_view name) -> const ObjectDescribe * {
            const auto it = objects_.find(std::string(name));
            return it == objects_.end() ? nullptr : &it->second;
        };
    }
    std::string error_of(const std::string &root, const std::vector<std::string> &parts) {
        try {
            resolve_field_path(objects_.at(root), parts, lookup_);
        } catch (const Error &e) {
            EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
            return e.what();
        }
        return "";
    }
    std::map<std::string, ObjectDescribe> objects_;
    DescribeLookup lookup_;
};

TEST_F(DescribeResolve, PlainFieldCaseInsensitive) {
    const ResolvedField r = resolve_field_path(objects_["Contact"], {"lastname"}, lookup_);
    EXPECT_EQ(r.field.name, "LastName");
    EXPECT_EQ(r.object, "Contact");
    EXPECT_TRUE(r.relationship_fields.empty());
    EXPECT_FALSE(r.through_polymorphic);
}

TEST_F(DescribeResolve, ParentPathsAcrossSeveralHops) {
    const ResolvedField r =
        resolve_field_path(objects_["Contact"], {"account", "Owner", "MANAGER", "Email"}, lookup_);
    EXPECT_EQ(r.field.name, "Email");
    EXPECT_EQ(r.field.type, "email");
    EXPECT_EQ(r.object, "User");
    EXPECT_EQ(r.relationship_fields, (std::vector<std::string>{"AccountId", "OwnerId", "ManagerId"}));
}

TEST_F(DescribeResolve, PolymorphicReferenceGoesThroughNamePseudoObject) {
    EXPECT_EQ(
        error_of("Contact", {"Owner", "Email"}),
        "relationship Owner of Contact is polymorphic (Group, User); a path through it reaches only fields "
        "of the Name pseudo-object, whose describe is not available (in field path \"Owner.Email\")");
    objects_["Name"] = parse_sobject_describe(R"({"name":"Name","queryable":false,"fields":[
        {"name":"Id","type":"id"},{"name":"Email","type":"email","length":80},{"name":"Type","type":"string"}]})");
    const ResolvedField r = resolve_field_path(objects_["Contact"], {"Owner", "Email"}, lookup_);
    EXPECT_EQ(r.object, "Name");
    EXPECT_EQ(r.field.length, 80);
    EXPECT_TRUE(r.through_polymorphic);
}

TEST_F(DescribeResolve, Errors) {
    EXPECT_EQ(error_of("Contact", {"Nope__c"}),
              "Contact has no field \"Nope__c\" (in field path \"Nope__c\")");
    EXPECT_EQ(error_of("Contact", {"Acount", "Name"}),
              "Contact has no relationship \"Acount\" (in field path \"Acount.Name\")");
    EXPECT_EQ(
        error_of("Contact", {"AccountId", "Name"}),
        "Contact has no relationship \"AccountId\"; the relationship of field AccountId is Account (in field "
        "path \"AccountId.Name\")");
    EXPECT_EQ(error_of("Contact", {"Account"}),
              "\"Account\" is a relationship of Contact, not a field; select one of its fields (e.g. "
              "Account.Id) or "
              "the field AccountId (in field path \"Account\")");
    EXPECT_EQ(
        error_of("Account", {"Account", "Name"}),
        "prefixing fields with the object name (Account.) is not supported; write the path without it (in "
        "field path \"Account.Name\")");
    EXPECT_EQ(error_of("Account", {"Region__r", "Name"}),
              "the describe of Region__c (target of Account.Region__r) is not available (in field path "
              "\"Region__r.Name\")");
    EXPECT_EQ(error_of("Account", {"Parent", "Owner", "Phone"}),
              "User has no field \"Phone\" (in field path \"Parent.Owner.Phone\")");
}

// The read path end to end without a network: statement -> select list -> describe -> column types.
TEST_F(DescribeResolve, SelectListToColumnDefinitions) {
    const SoqlSelect q = parse_soql_select(
        "SELECT Id, LastName, Account.Owner.Email, Score__c, MailingAddress FROM Contact WHERE LastName != "
        "null");
    std::vector<std::string> columns;
    std::vector<bool> bulk_ok;
    for (const SoqlField &f : q.fields) {
        const ResolvedField r = resolve_field_path(objects_.at(q.object), f.parts, lookup_);
        const PgColumnType t = pg_type_for(r.field);
        columns.push_back(f.column + " " + t.ddl());
        bulk_ok.push_back(t.bulk_selectable);
    }
    EXPECT_EQ(columns,
              (std::vector<std::string>{"id text COLLATE \"C\"", "lastname text", "account_owner_email text",
                                        "score__c numeric(18,2)", "mailingaddress jsonb"}));
    EXPECT_EQ(bulk_ok, (std::vector<bool>{true, true, true, true, false}));
}

}  // namespace
}  // namespace sfb
