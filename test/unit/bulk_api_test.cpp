#include "core/bulk_api.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <string>

namespace sfb {
namespace {

const ApiVersion v62{62};

// ---- enums ----

TEST(BulkEnums, OperationsAreCaseSensitive) {
    EXPECT_EQ(to_string(Operation::HardDelete), "hardDelete");
    EXPECT_EQ(to_string(Operation::QueryAll), "queryAll");
    EXPECT_EQ(parse_operation("hardDelete"), Operation::HardDelete);
    EXPECT_FALSE(parse_operation("harddelete"));
    EXPECT_FALSE(parse_operation("Insert"));
    EXPECT_FALSE(parse_operation("merge"));
    EXPECT_TRUE(is_ingest_operation(Operation::Delete));
    EXPECT_FALSE(is_ingest_operation(Operation::Query));
}

TEST(BulkEnums, StatesAndTerminal) {
    for (JobState s : {JobState::Open, JobState::UploadComplete, JobState::InProgress, JobState::JobComplete,
                       JobState::Failed, JobState::Aborted}) {
        EXPECT_EQ(parse_job_state(to_string(s)), s);
    }
    EXPECT_EQ(parse_job_state("Queued"), JobState::Unknown);
    EXPECT_EQ(parse_job_state("jobcomplete"), JobState::Unknown);
    EXPECT_TRUE(is_terminal(JobState::JobComplete));
    EXPECT_TRUE(is_terminal(JobState::Failed));
    EXPECT_TRUE(is_terminal(JobState::Aborted));
    EXPECT_FALSE(is_terminal(JobState::Open));
    EXPECT_FALSE(is_terminal(JobState::UploadComplete));
    EXPECT_FALSE(is_terminal(JobState::InProgress));
    EXPECT_FALSE(is_terminal(JobState::Unknown));
}

// ---- versions ----

TEST(BulkVersion, Validator) {
    EXPECT_EQ(parse_api_version("62.0").segment(), "v62.0");
    EXPECT_EQ(parse_api_version("41.0").str(), "41.0");
    EXPECT_EQ(parse_api_version("100.0").major, 100);
    EXPECT_THROW(parse_api_version("41.0", ApiKind::Query), Error);
    EXPECT_EQ(parse_api_version("47.0", ApiKind::Query).major, 47);
    for (const char *bad : {"40.0", "62", "62.1", "v62.0", " 62.0", "62.0 ", "062.0", "6.0", "1000.0", "",
                            "62.00", "-62.0", "6a.0"}) {
        EXPECT_TRUE(api_version_error(bad).has_value()) << bad;
    }
    EXPECT_NE(api_version_error("40.0")->find("too old"), std::string::npos);
}

TEST(BulkVersion, FromJobValue) {
    EXPECT_EQ(api_version_from_job_value("62.0")->major, 62);
    EXPECT_EQ(api_version_from_job_value("59")->major, 59);
    EXPECT_FALSE(api_version_from_job_value("62.5"));
    EXPECT_FALSE(api_version_from_job_value("abc"));
}

// ---- bodies ----

TEST(BulkBodies, IngestCreateMatchesDocExample) {
    IngestJobRequest r;
    r.object = "Contact";
    r.operation = Operation::Upsert;
    r.external_id_field_name = "Legacy_Key__c";
    EXPECT_EQ(
        to_json(r),
        R"({"object":"Contact","operation":"upsert","externalIdFieldName":"Legacy_Key__c","contentType":"CSV","columnDelimiter":"COMMA","lineEnding":"LF"})");
}

TEST(BulkBodies, IngestCreateOptions) {
    IngestJobRequest r;
    r.object = "Lead";
    r.operation = Operation::Insert;
    r.column_delimiter = csv::Delimiter::Pipe;
    r.line_ending = csv::LineEnding::CRLF;
    r.assignment_rule_id = "01QHs000000AbCd";
    EXPECT_EQ(
        to_json(r),
        R"({"object":"Lead","operation":"insert","contentType":"CSV","columnDelimiter":"PIPE","lineEnding":"CRLF","assignmentRuleId":"01QHs000000AbCd"})");
    r.operation = Operation::HardDelete;
    EXPECT_THROW(to_json(r), Error);  // assignment rule on delete
    r.assignment_rule_id.clear();
    EXPECT_EQ(
        to_json(r),
        R"({"object":"Lead","operation":"hardDelete","contentType":"CSV","columnDelimiter":"PIPE","lineEnding":"CRLF"})");
}

TEST(BulkBodies, IngestCreateValidation) {
    IngestJobRequest r;
    r.object = "Contact";
    r.operation = Operation::Upsert;
    EXPECT_THROW(to_json(r), Error);  // upsert without external id
    r.external_id_field_name = "Account.Ext__c";
    EXPECT_THROW(to_json(r), Error);  // external id is a plain field
    r.operation = Operation::Update;
    r.external_id_field_name = "Legacy_Key__c";
    EXPECT_THROW(to_json(r), Error);  // external id only for upsert
    r.external_id_field_name.clear();
    r.object = "Contact\",\"operation\":\"hardDelete";
    EXPECT_THROW(to_json(r), Error);  // injection attempt rejected by the name check
    r.object = "Contact";
    r.operation = Operation::Query;
    EXPECT_THROW(to_json(r), Error);
    r.operation = Operation::Insert;
    r.assignment_rule_id = "bogus";
    EXPECT_THROW(to_json(r), Error);
}

TEST(BulkBodies, QueryCreate) {
    QueryJobRequest q;
    q.query = "SELECT Id, Name, Account.Name, CreatedDate FROM Contact WHERE Name = 'O\"Brien'";
    EXPECT_EQ(
        to_json(q),
        R"({"operation":"query","query":"SELECT Id, Name, Account.Name, CreatedDate FROM Contact WHERE Name = 'O\"Brien'","contentType":"CSV","columnDelimiter":"COMMA","lineEnding":"LF"})");
    q.operation = Operation::QueryAll;
    EXPECT_NE(to_json(q).find(R"("operation":"queryAll")"), std::string::npos);
    q.query = "  ";
    EXPECT_THROW(to_json(q), Error);
    q.query = "SELECT Id FROM Account WHERE Name = '\xff'";
    try {
        to_json(q);
        FAIL();
    } catch (const Error &e) {
        EXPECT_STREQ(e.what(), "the SOQL query is not valid UTF-8");
    }
    q.query = "SELECT Id FROM Account";
    q.operation = Operation::Insert;
    EXPECT_THROW(to_json(q), Error);
}

TEST(BulkBodies, StateChange) {
    EXPECT_EQ(state_change_body(JobState::UploadComplete), R"({"state":"UploadComplete"})");
    EXPECT_EQ(state_change_body(JobState::Aborted), R"({"state":"Aborted"})");
    EXPECT_THROW(state_change_body(JobState::JobComplete), Error);
    EXPECT_THROW(state_change_body(JobState::Open), Error);
}

// ---- job info ----

TEST(BulkJobInfo, CreateResponseFromDoc) {
    const JobInfo j = parse_job_info(
        R"({"id":"750Hs00000Zq8RtIAJ","operation":"upsert","object":"Contact","createdById":"005Hs00000Lm3NzIAJ","createdDate":"2025-11-04T16:20:07.000+0000","systemModstamp":"2025-11-04T16:20:07.000+0000","state":"Open","externalIdFieldName":"Legacy_Key__c","concurrencyMode":"Parallel","contentType":"CSV","apiVersion":62.0,"contentUrl":"services/data/v62.0/jobs/ingest/750Hs00000Zq8RtIAJ/batches","lineEnding":"LF","columnDelimiter":"COMMA"})");
    EXPECT_EQ(j.id, "750Hs00000Zq8RtIAJ");
    EXPECT_EQ(j.state, JobState::Open);
    EXPECT_EQ(j.operation, Operation::Upsert);
    EXPECT_EQ(j.object, "Contact");
    EXPECT_EQ(j.external_id_field_name, "Legacy_Key__c");
    ASSERT_TRUE(j.api_version);
    EXPECT_EQ(j.api_version->str(), "62.0");
    EXPECT_EQ(j.content_url, "services/data/v62.0/jobs/ingest/750Hs00000Zq8RtIAJ/batches");
    EXPECT_EQ(j.column_delimiter, csv::Delimiter::Comma);
    EXPECT_EQ(j.line_ending, csv::LineEnding::LF);
    EXPECT_FALSE(j.number_records_processed);
    EXPECT_FALSE(j.error_message);
    EXPECT_TRUE(j.job_type.empty());
}

TEST(BulkJobInfo, PatchResponseOmitsFields) {
    const JobInfo j = parse_job_info(
        R"({"id":"750Hs00000Zq8RtIAJ","operation":"upsert","object":"Contact","createdById":"005Hs00000Lm3NzIAJ","createdDate":"2025-11-04T16:20:07.000+0000","systemModstamp":"2025-11-04T16:20:07.000+0000","state":"UploadComplete","externalIdFieldName":"Legacy_Key__c","concurrencyMode":"Parallel","contentType":"CSV","apiVersion":62.0})");
    EXPECT_EQ(j.state, JobState::UploadComplete);
    EXPECT_FALSE(j.column_delimiter);
    EXPECT_FALSE(j.line_ending);
    EXPECT_TRUE(j.content_url.empty());
}

TEST(BulkJobInfo, GetCompleteAndFailed) {
    const JobInfo done = parse_job_info(
        R"({"id":"750Hs00000Zq8RtIAJ","operation":"upsert","object":"Contact","createdById":"005Hs00000Lm3NzIAJ","createdDate":"2025-11-04T16:20:07.000+0000","systemModstamp":"2025-11-04T16:20:19.000+0000","state":"JobComplete","externalIdFieldName":"Legacy_Key__c","concurrencyMode":"Parallel","contentType":"CSV","apiVersion":62.0,"jobType":"V2Ingest","lineEnding":"LF","columnDelimiter":"COMMA","numberRecordsProcessed":2,"numberRecordsFailed":1,"retries":0,"totalProcessingTime":412,"apiActiveProcessingTime":160,"apexProcessingTime":0})");
    EXPECT_EQ(done.state, JobState::JobComplete);
    EXPECT_TRUE(is_terminal(done.state));
    EXPECT_EQ(done.job_type, "V2Ingest");
    EXPECT_EQ(done.number_records_processed, 2);
    EXPECT_EQ(done.number_records_failed, 1);
    EXPECT_EQ(done.retries, 0);
    EXPECT_EQ(done.total_processing_time, 412);
    EXPECT_EQ(done.api_active_processing_time, 160);
    EXPECT_EQ(done.apex_processing_time, 0);
    EXPECT_EQ(parse_salesforce_datetime_ms(done.system_modstamp), 1762273219000);

    const JobInfo failed = parse_job_info(
        R"({"id":"750Hs00000Zq9XyIAJ","operation":"insert","object":"Account","state":"Failed","apiVersion":62.0,"numberRecordsProcessed":0,"errorMessage":"InvalidBatch : Field name not found : Rating__cc"})");
    EXPECT_EQ(failed.state, JobState::Failed);
    EXPECT_EQ(failed.error_message, "InvalidBatch : Field name not found : Rating__cc");
}

TEST(BulkJobInfo, QueryJobAndTolerance) {
    const JobInfo q = parse_job_info(
        R"({"retries":"3","state":"JobComplete","id":"750Hs00000Zq9AbIAJ","operation":"query","apiVersion":"62.0","jobType":"V2Query","numberRecordsProcessed":3.0,"isPkChunkingSupported":true,"futureField":{"x":[1,2]},"totalProcessingTime":"n/a","columnDelimiter":"NEWDELIM"})");
    EXPECT_EQ(q.operation, Operation::Query);
    EXPECT_EQ(q.api_version->major, 62);
    EXPECT_EQ(q.number_records_processed, 3);
    EXPECT_EQ(q.retries, 3);
    EXPECT_FALSE(q.total_processing_time);
    EXPECT_FALSE(q.column_delimiter);
    EXPECT_EQ(q.is_pk_chunking_supported, true);
    EXPECT_FALSE(q.error_message);

    const JobInfo u = parse_job_info(R"({"id":"750Hs00000Zq9AbIAJ","state":"Queued","operation":"merge"})");
    EXPECT_EQ(u.state, JobState::Unknown);
    EXPECT_EQ(u.state_text, "Queued");
    EXPECT_FALSE(u.operation);
    EXPECT_EQ(u.operation_text, "merge");
}

TEST(BulkJobInfo, RejectsNonJobBodies) {
    for (const char *body : {"", "<html>502</html>", "[]", R"({"state":"Open"})", R"({"id":"750x"})",
                             R"({"id":5,"state":"Open"})", "{\"id\":\"750Hs00000Zq9AbIAJ\",\"state\":"}) {
        try {
            parse_job_info(body);
            FAIL() << body;
        } catch (const Error &e) {
            EXPECT_EQ(e.kind(), ErrorKind::ExternalService);
            EXPECT_EQ(std::string(e.what()).find("750"), std::string::npos) << e.what();
        }
    }
}

TEST(BulkJobInfo, DatetimeForms) {
    EXPECT_EQ(parse_salesforce_datetime_ms("2025-11-04T16:20:07.000+0000"), 1762273207000);
    EXPECT_EQ(parse_salesforce_datetime_ms("2025-11-04T16:20:07.123Z"), 1762273207123);
    EXPECT_EQ(parse_salesforce_datetime_ms("2025-11-04T16:20:07+00:00"), 1762273207000);
    EXPECT_EQ(parse_salesforce_datetime_ms("2025-11-04T18:20:07.000+0200"), 1762273207000);
    EXPECT_EQ(parse_salesforce_datetime_ms("2025-11-04T11:20:07.5-05:00"), 1762273207500);
    EXPECT_FALSE(parse_salesforce_datetime_ms("2025-11-04 16:20:07"));
    EXPECT_FALSE(parse_salesforce_datetime_ms("2025-11-04T16:20:07"));
    EXPECT_FALSE(parse_salesforce_datetime_ms("2025-13-04T16:20:07Z"));
    EXPECT_FALSE(parse_salesforce_datetime_ms("2025-11-04T16:20:07.Z"));
}

TEST(BulkJobList, DocExampleAndPaging) {
    const JobList l = parse_job_list(R"({
  "done": false,
  "records": [
    {"id":"750Hs00000Zq8RtIAJ","operation":"upsert","object":"Contact","createdById":"005Hs00000Lm3NzIAJ","createdDate":"2025-11-04T16:20:07.000+0000","systemModstamp":"2025-11-04T16:20:19.000+0000","state":"JobComplete","concurrencyMode":"Parallel","contentType":"CSV","apiVersion":62.0,"jobType":"V2Ingest","lineEnding":"LF","columnDelimiter":"COMMA"},
    {"no":"id"}
  ],
  "nextRecordsUrl": "/services/data/v62.0/jobs/ingest?queryLocator=01gHs00000ExAmPLE-1000"
})");
    EXPECT_FALSE(l.done);
    ASSERT_EQ(l.records.size(), 1u);
    EXPECT_EQ(l.records[0].state, JobState::JobComplete);
    EXPECT_EQ(l.next_records_url, "/services/data/v62.0/jobs/ingest?queryLocator=01gHs00000ExAmPLE-1000");
    const JobList last = parse_job_list(R"({"done":true,"records":[],"nextRecordsUrl":null})");
    EXPECT_TRUE(last.done);
    EXPECT_FALSE(last.next_records_url);
    EXPECT_FALSE(
        parse_job_list(R"({"done":false,"nextRecordsUrl":"https://evil.example/x"})").next_records_url);
    EXPECT_THROW(parse_job_list("[]"), Error);
    EXPECT_EQ(ingest_jobs_list_path(v62), "/services/data/v62.0/jobs/ingest?jobType=V2Ingest");
}

TEST(BulkJobList, ResultPagesDocExample) {
    const ResultPages p = parse_result_pages(R"({
  "resultPages": [
    {"resultUrl": "/services/data/v62.0/jobs/query/750Hs00000Zq9AbIAJ/results?locator=QUJD"},
    {"resultUrl": "/services/data/v62.0/jobs/query/750Hs00000Zq9AbIAJ/results?locator=REVG"}
  ],
  "nextRecordsUrl": "/services/data/v62.0/jobs/query/750Hs00000Zq9AbIAJ/resultPages?locator=R0hJ",
  "done": false
})");
    ASSERT_EQ(p.result_urls.size(), 2u);
    EXPECT_EQ(p.result_urls[1], "/services/data/v62.0/jobs/query/750Hs00000Zq9AbIAJ/results?locator=REVG");
    EXPECT_EQ(p.next_records_url,
              "/services/data/v62.0/jobs/query/750Hs00000Zq9AbIAJ/resultPages?locator=R0hJ");
    EXPECT_FALSE(p.done);
    const ResultPages alt =
        parse_result_pages(R"({"resultPages":[],"nextRecordUrl":"/services/data/v62.0/x","done":false})");
    EXPECT_EQ(alt.next_records_url, "/services/data/v62.0/x");
    EXPECT_TRUE(parse_result_pages(R"({"resultPages":[],"done":true})").done);
}

// ---- errors ----

TEST(BulkErrors, ArrayEitherMemberOrder) {
    ApiError e = parse_api_error(
        404, R"([{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}])");
    ASSERT_EQ(e.items.size(), 1u);
    EXPECT_EQ(e.first_code(), "NOT_FOUND");
    EXPECT_EQ(e.summary(), "HTTP 404 NOT_FOUND: The requested resource does not exist");
    e = parse_api_error(401,
                        R"([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}])");
    EXPECT_EQ(e.first_code(), "INVALID_SESSION_ID");
    EXPECT_EQ(e.first_message(), "Session expired or invalid");
}

TEST(BulkErrors, FieldsAndMultipleItems) {
    const ApiError e = parse_api_error(
        400, R"([{"message":"No such column 'Foo'","errorCode":"INVALID_FIELD","fields":["Foo","Bar"]},)"
             R"({"errorCode":"API_ERROR","message":"second"},"junk",{"unrelated":1}])");
    ASSERT_EQ(e.items.size(), 2u);
    EXPECT_EQ(e.items[0].fields, (std::vector<std::string>{"Foo", "Bar"}));
    EXPECT_EQ(e.summary(),
              "HTTP 400 INVALID_FIELD: No such column 'Foo' (fields: Foo Bar); API_ERROR: second");
}

TEST(BulkErrors, SingleObjectAndOAuthShape) {
    EXPECT_EQ(parse_api_error(400, R"({"errorCode":"INVALIDJOB","message":"x"})").first_code(), "INVALIDJOB");
    const ApiError o = parse_api_error(400, R"({"error":"invalid_grant","error_description":"expired"})");
    EXPECT_EQ(o.summary(), "HTTP 400 invalid_grant: expired");
}

TEST(BulkErrors, EmptyHtmlAndOddBodies) {
    EXPECT_EQ(parse_api_error(503, "").summary(), "HTTP 503 (empty body)");
    EXPECT_EQ(parse_api_error(406, " \r\n").summary(), "HTTP 406 (empty body)");
    EXPECT_EQ(parse_api_error(
                  502, "<html><head><title>502</title></head><body><h1>Bad Gateway</h1>\n</body></html>")
                  .summary(),
              "HTTP 502 (unexpected body: 502 Bad Gateway)");
    EXPECT_EQ(parse_api_error(500, "[]").summary(), "HTTP 500 (unexpected body: [])");
    const ApiError big = parse_api_error(500, std::string(5000, 'x'));
    EXPECT_LE(big.body_excerpt.size(), 203u);
    EXPECT_TRUE(big.items.empty());
    // Cut inside a multi-byte character: the partial sequence is dropped.
    const ApiError utf = parse_api_error(500, std::string(199, 'a') + "\xC3\xA9\xC3\xA9");
    EXPECT_EQ(utf.body_excerpt, std::string(199, 'a') + "...");
}

// ---- paths ----

TEST(BulkPaths, Ingest) {
    const std::string id = "750Hs00000Zq8RtIAJ";
    EXPECT_EQ(ingest_jobs_path(v62), "/services/data/v62.0/jobs/ingest");
    EXPECT_EQ(ingest_job_path(v62, id), "/services/data/v62.0/jobs/ingest/750Hs00000Zq8RtIAJ");
    EXPECT_EQ(ingest_batches_path(v62, id), "/services/data/v62.0/jobs/ingest/750Hs00000Zq8RtIAJ/batches");
    EXPECT_EQ(ingest_results_path(v62, id, IngestResult::Successful),
              "/services/data/v62.0/jobs/ingest/750Hs00000Zq8RtIAJ/successfulResults");
    EXPECT_EQ(ingest_results_path(v62, id, IngestResult::Failed),
              "/services/data/v62.0/jobs/ingest/750Hs00000Zq8RtIAJ/failedResults");
    EXPECT_EQ(ingest_results_path(v62, id, IngestResult::Unprocessed),
              "/services/data/v62.0/jobs/ingest/750Hs00000Zq8RtIAJ/unprocessedrecords");
    EXPECT_EQ(ingest_job_path(ApiVersion{41}, "750Hs00000Zq8Rt"),
              "/services/data/v41.0/jobs/ingest/750Hs00000Zq8Rt");
}

TEST(BulkPaths, RejectsBadJobIds) {
    for (const char *bad :
         {"", "750Hs00000Zq8RtIAK", "../../sobjects", "750Hs00000Zq8R/", "005Hs00000Lm3NzIAJ"}) {
        EXPECT_THROW(ingest_job_path(v62, bad), Error) << bad;
        EXPECT_THROW(query_results_path(v62, bad), Error) << bad;
    }
}

TEST(BulkPaths, Query) {
    const std::string id = "750Hs00000Zq9AbIAJ";
    EXPECT_EQ(query_jobs_path(v62), "/services/data/v62.0/jobs/query");
    EXPECT_EQ(query_job_path(v62, id), "/services/data/v62.0/jobs/query/750Hs00000Zq9AbIAJ");
    EXPECT_EQ(query_results_path(v62, id), "/services/data/v62.0/jobs/query/750Hs00000Zq9AbIAJ/results");
    EXPECT_EQ(query_results_path(v62, id, std::nullopt, 2),
              "/services/data/v62.0/jobs/query/750Hs00000Zq9AbIAJ/results?maxRecords=2");
    EXPECT_EQ(query_results_path(v62, id, std::string_view("Mg"), 2),
              "/services/data/v62.0/jobs/query/750Hs00000Zq9AbIAJ/results?locator=Mg&maxRecords=2");
    EXPECT_EQ(query_results_path(v62, id, std::string_view("a+b/c=")),
              "/services/data/v62.0/jobs/query/750Hs00000Zq9AbIAJ/results?locator=a%2Bb%2Fc%3D");
    EXPECT_THROW(query_results_path(v62, id, std::string_view("null")), Error);
    EXPECT_THROW(query_results_path(v62, id, std::nullopt, 0), Error);
    EXPECT_EQ(query_result_pages_path(ApiVersion{58}, id),
              "/services/data/v58.0/jobs/query/750Hs00000Zq9AbIAJ/resultPages");
    EXPECT_THROW(query_result_pages_path(ApiVersion{57}, id), Error);
}

TEST(BulkPaths, DescribeAndLimits) {
    EXPECT_EQ(sobjects_path(v62), "/services/data/v62.0/sobjects");
    EXPECT_EQ(sobject_describe_path(v62, "Invoice__c"), "/services/data/v62.0/sobjects/Invoice__c/describe");
    EXPECT_EQ(limits_path(ApiVersion{58}), "/services/data/v58.0/limits");
    // The object name lands in the path: nothing that could leave it.
    EXPECT_THROW(sobject_describe_path(v62, "Lead/../limits"), Error);
    EXPECT_THROW(sobject_describe_path(v62, "Lead?x=1"), Error);
    EXPECT_THROW(sobject_describe_path(v62, ""), Error);
}

TEST(BulkPaths, RestQueryEncodesTheStatement) {
    // A '+' in a datetime offset must travel as %2B, or Salesforce reads a space (soql-and-rest.md §1.1).
    EXPECT_EQ(rest_query_path(v62, "SELECT Id FROM Lead WHERE X__c > 2025-01-01T00:00:00+02:00", false),
              "/services/data/v62.0/"
              "query?q=SELECT%20Id%20FROM%20Lead%20WHERE%20X__c%20%3E%202025-01-01T00%3A00%3A00%2B02%3A00");
    EXPECT_EQ(rest_query_path(v62, "SELECT Id FROM Lead WHERE Name = 'a&b'", true),
              "/services/data/v62.0/queryAll?q=SELECT%20Id%20FROM%20Lead%20WHERE%20Name%20%3D%20%27a%26b%27");
}

TEST(BulkPaths, RecordCount) {
    EXPECT_EQ(record_count_path(v62, "Account"), "/services/data/v62.0/limits/recordCount?sObjects=Account");
    EXPECT_THROW(record_count_path(v62, "Account&sObjects=Lead"), Error);
    const char *body = R"({"sObjects":[{"count":3,"name":"Account"},{"count":1200000,"name":"Lead"}]})";
    EXPECT_EQ(parse_record_count(body, "lead"), 1200000);
    EXPECT_EQ(parse_record_count(body, "Account"), 3);
    // Salesforce leaves out objects without records: missing is unknown, not zero.
    EXPECT_FALSE(parse_record_count(body, "Contact"));
    EXPECT_FALSE(parse_record_count("not json", "Account"));
    EXPECT_FALSE(parse_record_count(R"({"sObjects":[{"count":"3","name":"Account"}]})", "Account"));
}

TEST(BulkPaths, NextLocator) {
    EXPECT_EQ(next_locator(std::string_view("Mg")), "Mg");
    EXPECT_FALSE(next_locator(std::string_view("null")));
    EXPECT_FALSE(next_locator(std::string_view("")));
    EXPECT_FALSE(next_locator(std::nullopt));
}

// ---- headers ----

TEST(BulkHeaders, LimitInfo) {
    auto u = parse_limit_info("api-usage=27/15000");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->used, 27);
    EXPECT_EQ(u->max, 15000);
    u = parse_limit_info("per-app-api-usage=17/250(appName=sample), api-usage=41/15000");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->used, 41);
    EXPECT_FALSE(parse_limit_info("per-app-api-usage=17/250(appName=sample)"));
    EXPECT_FALSE(parse_limit_info("api-usage=27"));
    EXPECT_FALSE(parse_limit_info("api-usage=/15000"));
    EXPECT_FALSE(parse_limit_info(""));
}

// ---- row errors ----

TEST(BulkRowErrors, DocExamples) {
    auto e = split_row_errors("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].code, "REQUIRED_FIELD_MISSING");
    EXPECT_EQ(e[0].message, "Required fields are missing: [LastName]");
    EXPECT_EQ(e[0].fields, (std::vector<std::string>{"LastName"}));

    e = split_row_errors(
        "INVALID_FIELD:Failed to deserialize field at col 3. Due to, '2003-04-31x' is not a valid value for "
        "the type "
        "xsd:date:CloseDate --");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].code, "INVALID_FIELD");
    EXPECT_EQ(e[0].message,
              "Failed to deserialize field at col 3. Due to, '2003-04-31x' is not a valid value for the type "
              "xsd:date");
    EXPECT_EQ(e[0].fields, (std::vector<std::string>{"CloseDate"}));

    e = split_row_errors("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].code, "UNABLE_TO_LOCK_ROW");
    EXPECT_EQ(e[0].message, "unable to obtain exclusive access to this record");
    EXPECT_TRUE(e[0].fields.empty());
}

TEST(BulkRowErrors, SeveralFieldsAndSeveralErrors) {
    auto e =
        split_row_errors("REQUIRED_FIELD_MISSING:Required fields are missing: [Name, Type]:Name,Type --");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].fields, (std::vector<std::string>{"Name", "Type"}));

    e = split_row_errors(
        "FIELD_CUSTOM_VALIDATION_EXCEPTION:Amount must be positive:Amount --"
        "FIELD_CUSTOM_VALIDATION_EXCEPTION:Stage is locked:-- DUPLICATE_VALUE:duplicate value found: "
        "Ext__c:Ext__c --");
    ASSERT_EQ(e.size(), 3u);
    EXPECT_EQ(e[0].message, "Amount must be positive");
    EXPECT_EQ(e[0].fields, (std::vector<std::string>{"Amount"}));
    EXPECT_EQ(e[1].message, "Stage is locked");
    EXPECT_TRUE(e[1].fields.empty());
    EXPECT_EQ(e[2].code, "DUPLICATE_VALUE");
    EXPECT_EQ(e[2].message, "duplicate value found: Ext__c");
    EXPECT_EQ(e[2].fields, (std::vector<std::string>{"Ext__c"}));
}

TEST(BulkRowErrors, MessagesWithDashesAndColons) {
    auto e = split_row_errors("INVALID_CROSS_REFERENCE_KEY:invalid cross reference id -- see docs:--");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].message, "invalid cross reference id -- see docs");
    // Text after the last ':' that is not a field list stays in the message.
    e = split_row_errors("ENTITY_IS_DELETED:entity is deleted: try again later --");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].message, "entity is deleted: try again later");
    EXPECT_TRUE(e[0].fields.empty());
}

TEST(BulkRowErrors, UnrecognisedTextKeptWhole) {
    auto e = split_row_errors("something odd happened");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].code, "");
    EXPECT_EQ(e[0].message, "something odd happened");
    EXPECT_TRUE(split_row_errors("").empty());
    e = split_row_errors("CODE_ONLY:no terminator here");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].code, "CODE_ONLY");
    EXPECT_EQ(e[0].message, "no terminator here");
}

}  // namespace
}  // namespace sfb
