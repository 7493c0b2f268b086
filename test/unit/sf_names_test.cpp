#include "core/sf_names.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <string>

namespace sfb {
namespace {

TEST(SfNames, AcceptsStandardCustomNamespacedAndSuffixedObjects) {
    for (const char *name :
         {"Account", "Contact", "AccountContactRelation", "My_Obj__c", "ns__Obj__c", "Obj__mdt", "Event__e",
          "Ext__x", "Big__b", "Article__kav", "My_Obj__Share", "AccountChangeEvent", "a", "A1_b2__c"}) {
        EXPECT_TRUE(is_valid_object_name(name)) << name;
        EXPECT_FALSE(object_name_error(name).has_value()) << name;
        EXPECT_NO_THROW(validate_object_name(name)) << name;
    }
}

TEST(SfNames, RejectsMalformedObjectNames) {
    for (const char *name : {"", "1Account", "_Account", "Account_", "My___c", "My Obj", "Acc-ount",
                             "Acc.ount", "Account;DROP", "a__1b", "Obj/../x", "Obj\"", "a__b__c__d__e"}) {
        EXPECT_FALSE(is_valid_object_name(name)) << name;
        EXPECT_THROW(validate_object_name(name), Error) << name;
    }
    EXPECT_FALSE(is_valid_object_name(std::string(kMaxIdentifierLength + 1, 'a')));
    EXPECT_TRUE(is_valid_object_name(std::string(kMaxIdentifierLength, 'a')));
}

TEST(SfNames, FourSegmentGeolocationFieldAccepted) {
    EXPECT_TRUE(is_valid_field_name("ns__Loc__Latitude__s"));
    EXPECT_TRUE(is_valid_field_name("Loc__Longitude__s"));
}

TEST(SfNames, RejectsNonAsciiLookalikeAndShowsItEscaped) {
    // "Acc\u043Eunt": Cyrillic small o (0xD0 0xBE) in place of the Latin o.
    const std::string lookalike = "Acc\xD0\xBEunt";
    EXPECT_FALSE(is_valid_object_name(lookalike));
    const auto err = object_name_error(lookalike);
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(err->find("\"Acc\\xD0\\xBEunt\""), std::string::npos) << *err;
    EXPECT_NE(err->find("non-ASCII"), std::string::npos) << *err;
}

TEST(SfNames, ErrorMessageTypeAndKind) {
    try {
        validate_field_name("Bad Name");
        FAIL() << "expected an exception";
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
        EXPECT_STREQ(
            e.what(),
            "invalid Salesforce field name \"Bad Name\": contains a character other than letters, digits "
            "and underscores");
    }
}

TEST(SfNames, QuoteForMessageEscapesAndTruncates) {
    EXPECT_EQ(quote_for_message("abc"), "\"abc\"");
    EXPECT_EQ(quote_for_message("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(quote_for_message("x\ny\t"), "\"x\\x0Ay\\x09\"");
    EXPECT_EQ(quote_for_message(std::string(100, 'z'), 5), "\"zzzzz\"...");
    // The error for a huge name shows at most 64 bytes of it.
    const auto err = object_name_error(std::string(10000, 'q') + "!");
    ASSERT_TRUE(err.has_value());
    EXPECT_LT(err->size(), 200u);
}

TEST(SfNames, ColumnNamesPlainRelationshipAndPolymorphic) {
    for (const char *col : {"LastName", "Legacy_Key__c", "Id", "Account.External_Id__c", "ReportsTo.Email",
                            "Parent_Obj__r.Ext__c", "Owner:User.Username", "What:Account.External_Id__c",
                            "ns__Parent__r.ns__Key__c"}) {
        EXPECT_TRUE(is_valid_column_name(col)) << col;
    }
}

TEST(SfNames, ColumnNamesRejected) {
    for (const char *col :
         {"", "Account.", ".Name", "Account.Owner.Name", "User:Username", "Owner:User:X.Name",
          "Owner.User:Name", ":Owner.Name", "Account..Name", "Acc ount.Name", "Account.Na me"}) {
        EXPECT_FALSE(is_valid_column_name(col)) << col;
        EXPECT_THROW(validate_column_name(col), Error) << col;
    }
}

TEST(SfNames, CustomRelationshipMustUseRSuffix) {
    const auto err = column_name_error("Parent__c.Ext__c");
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(err->find("__r"), std::string::npos) << *err;
    // The polymorphic form is only checked structurally (the order of type and relationship is not settled).
    EXPECT_TRUE(is_valid_column_name("Parent__r:My_Obj__c.Ext__c"));
}

TEST(SfNames, PolymorphicWithoutRelationshipExplainsForm) {
    const auto err = column_name_error("User:Username");
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(err->find("Owner:User.Username"), std::string::npos) << *err;
}

TEST(SfNames, RecordIdChecksumFromDocExamples) {
    // Ids quoted in docs/bulk-api-2.md §2.5; the emulator generates ids the same way.
    EXPECT_EQ(record_id_suffix("750Hs00000Zq8Rt"), "IAJ");
    EXPECT_EQ(record_id_suffix("005Hs00000Lm3Nz"), "IAJ");
    EXPECT_EQ(record_id_suffix("00DHs00000Q7xPl"), "MAJ");
    EXPECT_EQ(record_id_suffix("003Hs00002xY7wV"), "IAS");
    EXPECT_EQ(record_id_suffix("000000000000000"), "AAA");
    EXPECT_EQ(record_id_suffix("AAAAAAAAAAAAAAA"), "555");
}

TEST(SfNames, RecordIdValidation) {
    EXPECT_TRUE(is_valid_record_id("750Hs00000Zq8RtIAJ"));
    EXPECT_TRUE(is_valid_record_id("750Hs00000Zq8Rtiaj"));  // suffix is case-insensitive
    EXPECT_TRUE(is_valid_record_id("750Hs00000Zq8Rt"));
    EXPECT_FALSE(is_valid_record_id("750Hs00000Zq8RtIAK"));  // wrong checksum
    EXPECT_FALSE(is_valid_record_id("750hs00000Zq8RtIAJ"));  // case change in the body breaks the checksum
    EXPECT_FALSE(is_valid_record_id("750Hs00000Zq8R"));
    EXPECT_FALSE(is_valid_record_id("750Hs00000Zq8RtIA"));
    EXPECT_FALSE(is_valid_record_id("750Hs00000Zq8/tIAJ"));
    EXPECT_FALSE(is_valid_record_id(""));
    EXPECT_FALSE(is_valid_record_id("750Hs00000Zq8R\xC3\xA9"));
    const auto err = record_id_error("750Hs00000Zq8RtIAK");
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(err->find("checksum"), std::string::npos);
}

TEST(SfNames, To18AndSameRecord) {
    EXPECT_EQ(to_id18("750Hs00000Zq8Rt"), "750Hs00000Zq8RtIAJ");
    EXPECT_EQ(to_id18("750Hs00000Zq8Rtiaj"), "750Hs00000Zq8RtIAJ");
    EXPECT_THROW(to_id18("750Hs00000Zq8RtIAK"), Error);
    EXPECT_THROW(record_id_suffix("short"), Error);
    EXPECT_TRUE(same_record_id("750Hs00000Zq8Rt", "750Hs00000Zq8RtIAJ"));
    EXPECT_FALSE(same_record_id("750Hs00000Zq8Rt", "750Hs00000Zq8RT"));
    EXPECT_FALSE(same_record_id("bad", "bad"));
}

TEST(SfNames, ChecksumRoundTripsForEveryBitPattern) {
    // Each 5-character block maps its upper-case pattern to one of 32 characters; check all 32.
    for (unsigned bits = 0; bits < 32; ++bits) {
        std::string block;
        for (unsigned i = 0; i < 5; ++i) {
            block += (bits & (1u << i)) ? 'Q' : 'q';
        }
        const std::string id15 = block + block + block;
        const std::string suffix = record_id_suffix(id15);
        const char expected = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits];
        EXPECT_EQ(suffix, std::string(3, expected));
        EXPECT_TRUE(is_valid_record_id(id15 + suffix));
    }
}

}  // namespace
}  // namespace sfb
