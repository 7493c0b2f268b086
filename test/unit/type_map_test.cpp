#include "core/type_map.h"

#include <gtest/gtest.h>

#include <string>

namespace sfb {
namespace {

FieldDescribe field(const std::string &type, long long precision = 0, long long scale = 0,
                    long long length = 0) {
    FieldDescribe f;
    f.name = "F__c";
    f.type = type;
    f.precision = precision;
    f.scale = scale;
    f.length = length;
    return f;
}

TEST(TypeMap, IdsAndReferencesAreTextWithCCollation) {
    for (const char *type : {"id", "reference"}) {
        const PgColumnType t = pg_type_for(field(type));
        EXPECT_EQ(t.sql, "text") << type;
        EXPECT_EQ(t.collation, "C") << type;
        EXPECT_EQ(t.ddl(), "text COLLATE \"C\"") << type;
        EXPECT_TRUE(t.bulk_selectable);
        EXPECT_TRUE(t.known_type);
    }
}

TEST(TypeMap, TextualTypesArePlainText) {
    for (const char *type : {"string", "email", "phone", "url", "combobox", "textarea", "encryptedstring",
                             "picklist", "anyType", "datacategorygroupreference", "masterrecord"}) {
        const PgColumnType t = pg_type_for(field(type, 0, 0, 255));
        EXPECT_EQ(t.ddl(), "text") << type;
        EXPECT_FALSE(t.is_array) << type;
        EXPECT_TRUE(t.known_type) << type;
    }
}

TEST(TypeMap, MultipicklistIsTextArray) {
    const PgColumnType t = pg_type_for(field("multipicklist", 0, 0, 4099));
    EXPECT_EQ(t.sql, "text[]");
    EXPECT_TRUE(t.is_array);
}

TEST(TypeMap, ScalarTypes) {
    EXPECT_EQ(pg_type_for(field("boolean")).sql, "boolean");
    EXPECT_EQ(pg_type_for(field("int")).sql, "integer");
    EXPECT_EQ(pg_type_for(field("long")).sql, "bigint");
    EXPECT_EQ(pg_type_for(field("date")).sql, "date");
    EXPECT_EQ(pg_type_for(field("datetime")).sql, "timestamp with time zone");
    EXPECT_EQ(pg_type_for(field("time")).sql, "time without time zone");
    EXPECT_EQ(pg_type_for(field("DateTime")).sql,
              "timestamp with time zone");  // type compared case-insensitively
}

TEST(TypeMap, NumbersAreNumericWithPrecisionWhenKnown) {
    EXPECT_EQ(pg_type_for(field("double", 18, 2)).sql, "numeric(18,2)");
    EXPECT_EQ(pg_type_for(field("currency", 18, 0)).sql, "numeric(18,0)");
    EXPECT_EQ(pg_type_for(field("percent", 5, 2)).sql, "numeric(5,2)");
    EXPECT_EQ(pg_type_for(field("double", 0, 0)).sql, "numeric");
    EXPECT_EQ(pg_type_for(field("double", 3, 5)).sql, "numeric");  // scale beyond precision: unusable typmod
    EXPECT_EQ(pg_type_for(field("double", 2000, 2)).sql, "numeric");  // beyond numeric's 1000 digits
}

TEST(TypeMap, Base64IsByteaAndNotSelectableInBulk) {
    const PgColumnType t = pg_type_for(field("base64"));
    EXPECT_EQ(t.sql, "bytea");
    EXPECT_FALSE(t.bulk_selectable);
    EXPECT_FALSE(t.compound);
}

TEST(TypeMap, CompoundFieldsAreJsonbAndFlagged) {
    for (const char *type : {"address", "location"}) {
        const PgColumnType t = pg_type_for(field(type));
        EXPECT_EQ(t.sql, "jsonb") << type;
        EXPECT_TRUE(t.compound) << type;
        EXPECT_FALSE(t.bulk_selectable) << type;
    }
}

TEST(TypeMap, StructuredTypesAreJsonb) {
    for (const char *type : {"complexvalue", "json"}) {
        const PgColumnType t = pg_type_for(field(type));
        EXPECT_EQ(t.sql, "jsonb") << type;
        EXPECT_FALSE(t.compound) << type;
        EXPECT_TRUE(t.bulk_selectable) << type;
    }
}

TEST(TypeMap, UnknownTypeFallsBackToText) {
    const PgColumnType t = pg_type_for(field("hologram"));
    EXPECT_EQ(t.sql, "text");
    EXPECT_FALSE(t.known_type);
}

// ---- pg_type_accepts ----

bool accepts(const std::string &pg, const FieldDescribe &f) {
    std::string why;
    const bool ok = pg_type_accepts(pg, f, &why);
    EXPECT_EQ(ok, why.empty()) << pg << " / " << f.type << ": " << why;
    return ok;
}

TEST(TypeMapAccepts, TextTakesEverything) {
    for (const char *type :
         {"id",     "reference", "string",   "picklist",     "multipicklist", "boolean",  "int",
          "long",   "double",    "currency", "percent",      "date",          "datetime", "time",
          "base64", "address",   "location", "complexvalue", "json",          "anyType",  "hologram"}) {
        EXPECT_TRUE(accepts("text", field(type, 18, 2, 255))) << type;
    }
}

TEST(TypeMapAccepts, EveryTypeAcceptsWhatItMapsTo) {
    for (const char *type :
         {"id",     "reference", "string",   "picklist",     "multipicklist", "boolean",  "int",
          "long",   "double",    "currency", "percent",      "date",          "datetime", "time",
          "base64", "address",   "location", "complexvalue", "json",          "hologram"}) {
        const FieldDescribe f = field(type, 18, 2, 255);
        EXPECT_TRUE(accepts(pg_type_for(f).sql, f)) << type;
    }
}

TEST(TypeMapAccepts, Numbers) {
    EXPECT_TRUE(accepts("numeric", field("int")));
    EXPECT_TRUE(accepts("numeric", field("double", 18, 2)));
    EXPECT_TRUE(accepts("numeric", field("long")));
    EXPECT_TRUE(accepts("bigint", field("int")));
    EXPECT_TRUE(accepts("bigint", field("long")));
    EXPECT_FALSE(accepts("integer", field("long")));
    EXPECT_FALSE(accepts("integer", field("double", 18, 0)));
    EXPECT_FALSE(accepts("bigint", field("double", 18, 0)));
    EXPECT_FALSE(accepts("double precision", field("double", 18, 2)));
    EXPECT_FALSE(accepts("real", field("percent", 3, 0)));
    EXPECT_FALSE(accepts("numeric", field("string", 0, 0, 10)));
    EXPECT_FALSE(accepts("integer", field("boolean")));
}

TEST(TypeMapAccepts, NumericTypmodMustHoldTheDigits) {
    EXPECT_TRUE(accepts("numeric(18,2)", field("double", 18, 2)));
    EXPECT_TRUE(accepts("numeric(20,4)", field("double", 18, 2)));
    EXPECT_FALSE(accepts("numeric(18,0)", field("double", 18, 2)));  // would round the cents
    EXPECT_FALSE(accepts("numeric(10,2)", field("currency", 18, 2)));
    EXPECT_FALSE(accepts("numeric(18,2)", field("double", 0, 0)));  // unknown precision
    EXPECT_TRUE(accepts("numeric(10,0)", field("int")));
    EXPECT_TRUE(accepts("numeric(10)", field("int")));
    EXPECT_FALSE(accepts("numeric(9,0)", field("int")));
    EXPECT_TRUE(accepts("numeric(19,0)", field("long")));
    EXPECT_FALSE(accepts("numeric(18,0)", field("long")));
}

TEST(TypeMapAccepts, DatesAndTimes) {
    EXPECT_TRUE(accepts("timestamp with time zone", field("datetime")));
    EXPECT_TRUE(accepts("timestamptz", field("datetime")));
    EXPECT_TRUE(accepts("timestamp(3) with time zone", field("datetime")));
    EXPECT_FALSE(accepts("timestamp without time zone", field("datetime")));  // would drop the UTC offset
    EXPECT_FALSE(accepts("date", field("datetime")));
    EXPECT_TRUE(accepts("date", field("date")));
    EXPECT_FALSE(accepts("timestamp with time zone", field("date")));  // midnight in the session's zone
    EXPECT_TRUE(accepts("time without time zone", field("time")));
    EXPECT_TRUE(accepts("time", field("time")));
    EXPECT_FALSE(accepts("time with time zone", field("time")));
}

TEST(TypeMapAccepts, VaryingCharacterLengthMustFit) {
    EXPECT_TRUE(accepts("character varying", field("string", 0, 0, 80)));
    EXPECT_TRUE(accepts("character varying(80)", field("string", 0, 0, 80)));
    EXPECT_TRUE(accepts("varchar(100)", field("email", 0, 0, 80)));
    EXPECT_FALSE(accepts("character varying(40)", field("string", 0, 0, 80)));
    EXPECT_FALSE(accepts("character varying(40)", field("string", 0, 0, 0)));  // unknown length
    EXPECT_TRUE(accepts("character varying(18)", field("id")));
    EXPECT_FALSE(accepts("character varying(15)", field("reference")));
    EXPECT_FALSE(accepts("character(18)", field("id")));  // blank-padded: refuse
    EXPECT_FALSE(accepts("character varying", field("int")));
}

TEST(TypeMapAccepts, ArraysJsonBytesBooleans) {
    EXPECT_TRUE(accepts("text[]", field("multipicklist")));
    EXPECT_FALSE(accepts("text[]", field("picklist")));
    EXPECT_FALSE(accepts("integer[]", field("multipicklist")));
    EXPECT_TRUE(accepts("jsonb", field("address")));
    EXPECT_TRUE(accepts("json", field("location")));
    EXPECT_FALSE(accepts("jsonb", field("string", 0, 0, 10)));
    EXPECT_TRUE(accepts("bytea", field("base64")));
    EXPECT_FALSE(accepts("bytea", field("string", 0, 0, 10)));
    EXPECT_TRUE(accepts("boolean", field("boolean")));
    EXPECT_TRUE(accepts("bool", field("boolean")));
    EXPECT_FALSE(accepts("boolean", field("string", 0, 0, 5)));
}

TEST(TypeMapAccepts, SpellingIsNormalised) {
    EXPECT_TRUE(accepts("  INTEGER ", field("int")));
    EXPECT_TRUE(accepts("int4", field("int")));
    EXPECT_TRUE(accepts("int8", field("long")));
    EXPECT_TRUE(accepts("DECIMAL(18, 2)", field("double", 18, 2)));
    EXPECT_TRUE(accepts("Timestamp  With Time Zone", field("datetime")));
    EXPECT_FALSE(accepts("numeric(18", field("double", 18, 2)));
    EXPECT_FALSE(accepts("my_domain", field("string", 0, 0, 10)));
}

TEST(TypeMapAccepts, WhyNamesColumnFieldAndFix) {
    FieldDescribe f = field("double", 18, 2);
    f.name = "Amount";
    std::string why;
    EXPECT_FALSE(pg_type_accepts("integer", f, &why));
    EXPECT_EQ(why,
              "a column of type \"integer\" cannot receive the values of double field \"Amount\"; "
              "numeric(18,2) or text would");
    EXPECT_FALSE(pg_type_accepts("numeric(10,2)", f, &why));
    EXPECT_EQ(why,
              "a column of type \"numeric(10,2)\" cannot receive the values of double field \"Amount\" (the "
              "field has precision 18 and scale 2); numeric(18,2) or text would");
    FieldDescribe s = field("string", 0, 0, 80);
    s.name = "Title";
    EXPECT_FALSE(pg_type_accepts("varchar(40)", s, &why));
    EXPECT_EQ(
        why,
        "a column of type \"varchar(40)\" cannot receive the values of string field \"Title\" (the field "
        "holds up to 80 characters); text would");
    EXPECT_FALSE(pg_type_accepts("integer", f, nullptr));  // a null `why` is allowed
    EXPECT_TRUE(pg_type_accepts("numeric(18,2)", f, nullptr));
}

}  // namespace
}  // namespace sfb
