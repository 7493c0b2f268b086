#include "core/fdw_options.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <string>

namespace sfb {
namespace {

std::string message_of(OptionOwner owner, const OptionList &options) {
    try {
        validate_options(owner, options);
    } catch (const Error &e) {
        return e.what();
    }
    return "";
}

TEST(FdwOptions, ScanEngineNames) {
    EXPECT_EQ(parse_scan_engine("REST", "engine"), ScanEngine::Rest);
    EXPECT_EQ(parse_scan_engine("bulk", "engine"), ScanEngine::Bulk);
    EXPECT_EQ(parse_scan_engine("Auto", "engine"), ScanEngine::Auto);
    EXPECT_EQ(to_string(ScanEngine::Bulk), "bulk");
    EXPECT_THROW(parse_scan_engine("fast", "engine"), Error);
}

TEST(FdwOptions, ServerEngine) {
    EXPECT_EQ(server_settings({}).engine, ScanEngine::Auto);
    EXPECT_EQ(server_settings({{"engine", "bulk"}}).engine, ScanEngine::Bulk);
    EXPECT_NE(
        message_of(OptionOwner::Server, {{"engine", "sometimes"}}).find("valid values are auto, rest, bulk"),
        std::string::npos);
}

TEST(FdwOptions, ForeignTable) {
    ForeignTableSettings t = foreign_table_settings({{"object", "Invoice__c"}, {"engine", "rest"}});
    EXPECT_EQ(t.object, "Invoice__c");
    EXPECT_EQ(t.engine, ScanEngine::Rest);
    EXPECT_FALSE(foreign_table_settings({}).engine);
    EXPECT_EQ(foreign_table_settings({}).object, "");
    EXPECT_NE(message_of(OptionOwner::ForeignTable, {{"objekt", "Account"}})
                  .find("valid options are: object, engine"),
              std::string::npos);
    // The object goes into SOQL: only an API name passes.
    EXPECT_NE(message_of(OptionOwner::ForeignTable, {{"object", "Account WHERE"}}).find("object"),
              std::string::npos);
}

TEST(FdwOptions, Column) {
    EXPECT_EQ(column_field({{"field", "LastName"}}), "LastName");
    EXPECT_EQ(column_field({}), "");
    EXPECT_NE(message_of(OptionOwner::ForeignTableColumn, {{"name", "x"}}).find("valid options are: field"),
              std::string::npos);
    EXPECT_THROW(column_field({{"field", "Owner.Email"}}), Error);
    EXPECT_THROW(column_field({{"field", "Name, Id"}}), Error);
}

TEST(FdwOptions, WrapperTakesNone) {
    EXPECT_NE(message_of(OptionOwner::Wrapper, {{"engine", "rest"}}).find("takes no options"),
              std::string::npos);
}

}  // namespace
}  // namespace sfb
