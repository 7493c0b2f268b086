#include "core/error.h"
#include "core/ingest_spec.h"

#include <gtest/gtest.h>

namespace {

using sfb::IngestOptions;
using sfb::Operation;

IngestOptions options(Operation op, std::string object = "Lead") {
    IngestOptions o;
    o.operation = op;
    o.object = std::move(object);
    return o;
}

// The message of the sfb::Error that make_ingest_spec throws, or "" when it accepts.
std::string refusal(const IngestOptions &o, const std::vector<std::string> &columns) {
    try {
        sfb::make_ingest_spec(o, columns);
        return "";
    } catch (const sfb::Error &e) {
        EXPECT_EQ(e.kind(), sfb::ErrorKind::InvalidParameter);
        return e.what();
    }
}

TEST(IngestSpec, AcceptsAnInsertWithDefaults) {
    auto spec =
        sfb::make_ingest_spec(options(Operation::Insert), {"LastName", "Company", "Account.External_Id__c"});
    EXPECT_EQ(spec.object, "Lead");
    EXPECT_FALSE(spec.nulls_clear);
    EXPECT_EQ(spec.max_upload_bytes, 100u * 1000 * 1000);
    EXPECT_EQ(spec.format.delimiter, sfb::csv::Delimiter::Comma);
    EXPECT_EQ(spec.format.line_ending, sfb::csv::LineEnding::LF);
    EXPECT_EQ(spec.columns.size(), 3u);
}

TEST(IngestSpec, CarriesOptionsIntoTheJobRequest) {
    auto o = options(Operation::Upsert);
    o.external_id = "External_Id__c";
    o.nulls = "clear";
    o.max_upload_mb = 7;
    o.line_ending = "CRLF";
    o.column_delimiter = "PIPE";
    auto spec = sfb::make_ingest_spec(o, {"External_Id__c", "LastName"});
    EXPECT_TRUE(spec.nulls_clear);
    EXPECT_EQ(spec.max_upload_bytes, 7u * 1000 * 1000);
    auto request = sfb::job_request_for(spec);
    EXPECT_EQ(request.external_id_field_name, "External_Id__c");
    EXPECT_EQ(request.column_delimiter, sfb::csv::Delimiter::Pipe);
    EXPECT_EQ(request.line_ending, sfb::csv::LineEnding::CRLF);
    EXPECT_EQ(request.operation, Operation::Upsert);
}

TEST(IngestSpec, RefusesBadObjectsAndOptionsNamingThem) {
    EXPECT_NE(refusal(options(Operation::Insert, "Lead; DROP"), {"LastName"}).find("object"),
              std::string::npos);
    auto o = options(Operation::Insert);
    o.nulls = "null";
    EXPECT_NE(refusal(o, {"LastName"}).find("nulls"), std::string::npos);
    o = options(Operation::Insert);
    o.max_upload_mb = 101;
    EXPECT_NE(refusal(o, {"LastName"}).find("max_upload_mb"), std::string::npos);
    o.max_upload_mb = 0;
    EXPECT_NE(refusal(o, {"LastName"}).find("max_upload_mb"), std::string::npos);
    o = options(Operation::Insert);
    o.line_ending = "CR";
    EXPECT_NE(refusal(o, {"LastName"}), "");
    o = options(Operation::Insert);
    o.column_delimiter = "COLON";
    EXPECT_NE(refusal(o, {"LastName"}), "");
    o = options(Operation::Delete);
    o.assignment_rule_id = "01Q000000000001";
    EXPECT_NE(refusal(o, {"Id"}).find("assignment_rule_id"), std::string::npos);
    o = options(Operation::Insert);
    o.assignment_rule_id = "not-an-id";
    EXPECT_NE(refusal(o, {"LastName"}).find("assignment_rule_id"), std::string::npos);
}

TEST(IngestSpec, UpsertNeedsItsExternalIdColumn) {
    auto o = options(Operation::Upsert);
    EXPECT_NE(refusal(o, {"LastName"}).find("external_id"), std::string::npos);
    o.external_id = "External_Id__c";
    EXPECT_NE(refusal(o, {"LastName"}).find("External_Id__c"), std::string::npos);
    EXPECT_EQ(refusal(o, {"external_id__c", "LastName"}), "");  // Salesforce names are case-insensitive
}

TEST(IngestSpec, UpdateNeedsIdAndDeleteTakesOnlyId) {
    EXPECT_NE(refusal(options(Operation::Update), {"LastName"}).find("\"Id\""), std::string::npos);
    EXPECT_EQ(refusal(options(Operation::Update), {"Id", "LastName"}), "");
    EXPECT_NE(refusal(options(Operation::Delete), {"Id", "LastName"}).find("exactly one column"),
              std::string::npos);
    EXPECT_NE(refusal(options(Operation::HardDelete), {"Name"}).find("hardDelete"), std::string::npos);
    EXPECT_EQ(refusal(options(Operation::HardDelete), {"Id"}), "");
}

TEST(IngestSpec, RefusesEmptyDuplicateAndMalformedColumns) {
    EXPECT_NE(refusal(options(Operation::Insert), {}).find("no columns"), std::string::npos);
    EXPECT_NE(refusal(options(Operation::Insert), {"LastName", "lastname"}).find("twice"), std::string::npos);
    EXPECT_NE(refusal(options(Operation::Insert), {"LastName", "?column?"}).find("column 2"),
              std::string::npos);
    EXPECT_NE(refusal(options(Operation::Insert), {"Last Name"}), "");
    EXPECT_NE(refusal(options(Operation::Insert), {"Account..Name"}), "");
}

}  // namespace
