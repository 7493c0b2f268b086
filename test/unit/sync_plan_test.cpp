#include "core/sync_plan.h"

#include "core/error.h"

#include <gtest/gtest.h>

namespace sfb {
namespace {

ObjectDescribe account(bool replicateable = true, bool with_stamp = true) {
    std::string fields =
        R"({"name":"Id","type":"id"},{"name":"IsDeleted","type":"boolean"},{"name":"Name","type":"string"},)"
        R"({"name":"BillingAddress","type":"address"},{"name":"BillingCity","type":"string",)"
        R"("compoundFieldName":"BillingAddress"},{"name":"Logo__c","type":"base64"},)"
        R"({"name":"Old__c","type":"string","deprecatedAndHidden":true},)"
        R"({"name":"Score__c","type":"double","calculated":true},{"name":"AnnualRevenue","type":"currency"})";
    if (with_stamp)
        fields += R"(,{"name":"SystemModstamp","type":"datetime"})";
    return parse_sobject_describe(std::string(R"({"name":"Account","queryable":true,"replicateable":)") +
                                  (replicateable ? "true" : "false") + R"(,"fields":[)" + fields + "]}");
}

constexpr std::int64_t kT0 = 1764633600000;  // 2025-12-02T00:00:00Z

TEST(SyncPlan, MirrorableNeedsReplicateableAndTheTrackingFields) {
    EXPECT_NO_THROW(check_mirrorable(account()));
    try {
        check_mirrorable(account(false));
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
        EXPECT_NE(std::string(e.what()).find("Account is not replicateable"), std::string::npos) << e.what();
    }
    try {
        check_mirrorable(account(true, false));
        FAIL();
    } catch (const Error &e) {
        EXPECT_NE(std::string(e.what()).find("has no SystemModstamp field"), std::string::npos) << e.what();
    }
}

TEST(SyncPlan, DefaultFieldsAreWhatBulkQueryReturnsWithTheTrackingFieldsFirst) {
    std::vector<std::string> f = sync_fields(account(), std::nullopt);
    EXPECT_EQ(f, (std::vector<std::string>{"Id", "SystemModstamp", "IsDeleted", "Name", "BillingCity",
                                           "Score__c", "AnnualRevenue"}));
}

TEST(SyncPlan, RequestedFieldsTakeTheDescribeSpellingAndDropDuplicates) {
    std::vector<std::string> f =
        sync_fields(account(), std::vector<std::string>{"name", "NAME", "id", "Nope__c"});
    EXPECT_EQ(f, (std::vector<std::string>{"Id", "SystemModstamp", "IsDeleted", "Name", "Nope__c"}));
}

TEST(SyncPlan, RelationshipPathsAreRefused) {
    try {
        sync_fields(account(), std::vector<std::string>{"Name", "Owner.Email"});
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
        EXPECT_NE(std::string(e.what()).find("\"Owner.Email\" is a relationship path"), std::string::npos)
            << e.what();
    }
}

TEST(SyncPlan, DriftFindsRemovedAndAddedFields) {
    EXPECT_EQ(removed_fields({"Id", "Name", "Gone__c"}, account()), std::vector<std::string>{"Gone__c"});
    EXPECT_EQ(added_fields({"Id", "Name", "AnnualRevenue"}, {"id", "name"}),
              std::vector<std::string>{"AnnualRevenue"});
    EXPECT_EQ(calculated_fields({"Id", "score__c", "Name"}, account()), std::vector<std::string>{"Score__c"});
}

TEST(SyncPlan, TheKindOfRun) {
    SyncSchedule s;
    EXPECT_EQ(decide_sync_run(s, kT0).kind, SyncRunKind::Full);
    s.watermark_ms = kT0;
    SyncDecision d = decide_sync_run(s, kT0 + 1000);
    EXPECT_EQ(d.kind, SyncRunKind::Incremental);
    EXPECT_EQ(*d.since_ms, kT0 - 5 * 60 * 1000);
    EXPECT_EQ(d.reason,
              "changes since 2025-12-01T23:55:00.000Z (watermark 2025-12-02T00:00:00.000Z less the overlap)");

    s.reconcile_ms = 86400000;
    s.last_full_ms = kT0 - 86400000 + 1;
    EXPECT_EQ(decide_sync_run(s, kT0).kind, SyncRunKind::Incremental);
    d = decide_sync_run(s, kT0 + 1);
    EXPECT_EQ(d.kind, SyncRunKind::Full);
    EXPECT_EQ(d.reason, "reconcile every 1 day: the last full run started 2025-12-01T00:00:00.001Z");

    s.reconcile_ms.reset();
    s.refresh_formulas_ms = 3600000;
    s.last_formulas_ms = kT0 - 3600000;
    EXPECT_EQ(decide_sync_run(s, kT0).kind, SyncRunKind::Incremental) << "no calculated field is mirrored";
    s.has_calculated = true;
    d = decide_sync_run(s, kT0);
    EXPECT_EQ(d.kind, SyncRunKind::Formulas);
    EXPECT_EQ(d.reason,
              "refresh_formulas every 1 hour: calculated fields last read in a run started "
              "2025-12-01T23:00:00.000Z");
    s.last_formulas_ms = kT0 - 60000;
    EXPECT_EQ(decide_sync_run(s, kT0).kind, SyncRunKind::Incremental);
}

TEST(SyncPlan, Soql) {
    SyncDecision full;
    EXPECT_EQ(sync_soql("Account", {"Id", "SystemModstamp", "Name"}, {}, std::nullopt, full),
              "SELECT Id, SystemModstamp, Name FROM Account");
    SyncDecision inc;
    inc.kind = SyncRunKind::Incremental;
    inc.since_ms = kT0 + 1999;  // floored to the second
    EXPECT_EQ(sync_soql("Account", {"Id", "Name"}, {}, std::string("Industry = 'x' OR Name = 'y'"), inc),
              "SELECT Id, Name FROM Account WHERE (Industry = 'x' OR Name = 'y') AND SystemModstamp >= "
              "2025-12-02T00:00:01Z");
    SyncDecision formulas;
    formulas.kind = SyncRunKind::Formulas;
    EXPECT_EQ(
        sync_soql("Account", {"Id", "Name", "Score__c"}, {"Score__c"}, std::string("Name != null"), formulas),
        "SELECT Id, Score__c FROM Account WHERE (Name != null)");
}

TEST(SyncPlan, DeletedWindowIsOnWholeMinutesAndLongEnough) {
    DeletedWindow w = deleted_window(kT0 + 59000, 5 * 60000, kT0 + 3600000 + 30000);
    EXPECT_EQ(w.start_ms, kT0 - 5 * 60000);
    EXPECT_EQ(w.needed_from_ms, kT0);
    EXPECT_EQ(w.end_ms, kT0 + 3600000);
    w = deleted_window(kT0, 0, kT0 + 30000);
    EXPECT_EQ(w.end_ms, kT0);
    EXPECT_EQ(w.start_ms, kT0 - 120000);
    EXPECT_EQ(
        deleted_records_path(parse_api_version("62.0"), "Account", deleted_window(kT0, 0, kT0 + 600000)),
        "/services/data/v62.0/sobjects/Account/deleted/?start=2025-12-02T00%3A00%3A00%2B00%3A00"
        "&end=2025-12-02T00%3A10%3A00%2B00%3A00");
    EXPECT_THROW(deleted_records_path(parse_api_version("62.0"), "Acc/ount", w), Error);
}

TEST(SyncPlan, DeletedAnswer) {
    DeletedRecords r = parse_deleted_records(
        R"({"deletedRecords":[{"id":"001A","deletedDate":"2025-12-02T00:01:00.000+0000"}],)"
        R"("earliestDateAvailable":"2025-11-20T00:00:00.000+0000","latestDateCovered":"2025-12-02T00:10:00.000+0000"})");
    EXPECT_EQ(r.ids, std::vector<std::string>{"001A"});
    EXPECT_EQ(r.latest_covered_ms, kT0 + 600000);
    DeletedWindow w = deleted_window(kT0 - 86400000, 5 * 60000, kT0);
    EXPECT_TRUE(deleted_window_covered(r, w));
    r.earliest_available_ms = kT0 - 86400000 - 60000;  // before the overlap's start: covered
    EXPECT_TRUE(deleted_window_covered(r, w));
    r.earliest_available_ms = kT0 - 86400000;  // the cursor's minute: covered
    EXPECT_TRUE(deleted_window_covered(r, w));
    r.earliest_available_ms = kT0 - 86400000 + 60000;  // after the cursor: deletions may be lost
    EXPECT_FALSE(deleted_window_covered(r, w));
    EXPECT_THROW(parse_deleted_records(R"({"deletedRecords":[]})"), Error);
    EXPECT_THROW(parse_deleted_records(R"({"deletedRecords":{},"latestDateCovered":"2025-12-02T00:10:00Z"})"),
                 Error);
    EXPECT_THROW(parse_deleted_records("<html>"), Error);
    EXPECT_THROW(parse_deleted_records(R"({"deletedRecords":[],"latestDateCovered":"soon"})"), Error);
}

TEST(SyncPlan, FilterParenthesesPairUp) {
    EXPECT_NO_THROW(check_sync_filter("(A = 1 OR B = 2) AND Name = ')('"));
    EXPECT_NO_THROW(check_sync_filter("Name = 'it\\'s (' AND Id IN (SELECT AccountId FROM Contact)"));
    try {
        check_sync_filter("A = 1) OR (B = 2");
        FAIL();
    } catch (const Error &e) {
        EXPECT_STREQ(e.what(), "filter: ')' at character 6 closes a parenthesis the filter did not open");
    }
    EXPECT_THROW(check_sync_filter("((A = 1)"), Error);
}

TEST(SyncPlan, Names) {
    EXPECT_EQ(parse_sync_deletes("mark"), SyncDeletes::Mark);
    EXPECT_THROW(parse_sync_deletes("Mark"), Error);
    EXPECT_EQ(to_string(SyncRunKind::Formulas), "formulas");
}

}  // namespace
}  // namespace sfb
