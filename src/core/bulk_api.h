// Bulk API 2.0 value types, JSON bodies, response parsers and resource paths (docs/bulk-api-2.md §2, §4-§7,
// §9, §11; a bare § below is a section of that file). No I/O. Parsers follow §2.4: unknown members are
// ignored, missing optional members are absent, and a member of an unexpected type is treated as absent
// rather than failing a whole poll.
#pragma once
#include "core/core_only.h"

#include "core/csv.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sfb {

// ---- enums (exact, case-sensitive wire names) ----

enum class Operation { Insert, Update, Upsert, Delete, HardDelete, Query, QueryAll };
std::string_view to_string(Operation op);  // "insert" ... "hardDelete", "query", "queryAll"
std::optional<Operation> parse_operation(std::string_view name);  // case-sensitive
bool is_ingest_operation(Operation op);

// Unknown: a state string this client does not know (a future Salesforce state). Not terminal, so a poller
// keeps polling and surfaces the raw text, instead of failing the job on a new word.
enum class JobState { Open, UploadComplete, InProgress, JobComplete, Failed, Aborted, Unknown };
std::string_view to_string(JobState s);
JobState parse_job_state(std::string_view name);  // Unknown for anything unrecognised
// JobComplete, Failed, Aborted.
bool is_terminal(JobState s);

// Column delimiters and line endings are the CSV layer's (csv::Delimiter, csv::LineEnding): one concept,
// one place. Their Salesforce names come from csv::salesforce_name and csv::parse_delimiter/_line_ending.

// ---- API versions ----

enum class ApiKind { Ingest, Query };
inline constexpr int kMinIngestApiVersion = 41;  // Bulk API 2.0 ingest (§11)
inline constexpr int kMinQueryApiVersion = 47;   // Bulk API 2.0 query jobs
inline constexpr int kMinResultPagesApiVersion = 58;

struct ApiVersion {
    int major = 62;
    std::string str() const;      // "62.0"
    std::string segment() const;  // "v62.0"
};
// Accepts exactly "NN.0" (2 or 3 digits, no sign, no spaces) with NN >= the minimum for `kind`.
std::optional<std::string> api_version_error(std::string_view text, ApiKind kind = ApiKind::Ingest);
ApiVersion parse_api_version(std::string_view text, ApiKind kind = ApiKind::Ingest);  // throws sfb::Error
// The job's apiVersion as it arrives in JSON (62.0 as number, or "62.0" from third-party wrappers).
std::optional<ApiVersion> api_version_from_job_value(std::string_view text);

// ---- request bodies ----

struct IngestJobRequest {
    std::string object;
    Operation operation = Operation::Insert;
    std::string external_id_field_name;  // required for upsert, refused otherwise
    csv::Delimiter column_delimiter = csv::Delimiter::Comma;
    csv::LineEnding line_ending = csv::LineEnding::LF;
    std::string assignment_rule_id;  // optional; insert/update/upsert only
};
// {"object":..,"operation":..,["externalIdFieldName":..],"contentType":"CSV","columnDelimiter":..,
//  "lineEnding":..,["assignmentRuleId":..]}. Validates names (sf_names.h) and the operation rules first and
// throws sfb::Error(InvalidParameter) naming the problem.
std::string to_json(const IngestJobRequest &r);

struct QueryJobRequest {
    Operation operation = Operation::Query;  // Query or QueryAll
    std::string query;                       // SOQL, sent as is (JSON-escaped)
    csv::Delimiter column_delimiter = csv::Delimiter::Comma;
    csv::LineEnding line_ending = csv::LineEnding::LF;
};
std::string to_json(const QueryJobRequest &r);

// {"state":"UploadComplete"} or {"state":"Aborted"}; the only states a client may request (§5.2).
std::string state_change_body(JobState target);

// ---- job info ----

struct JobInfo {
    std::string id;  // required
    JobState state = JobState::Unknown;
    std::string state_text;      // as sent, for messages about Unknown states
    std::string operation_text;  // as sent; `operation` is nullopt when unrecognised
    std::optional<Operation> operation;
    std::string object;
    std::string created_by_id;
    std::string created_date;  // "2025-11-04T16:20:07.000+0000"; see parse_salesforce_datetime_ms
    std::string system_modstamp;
    std::string external_id_field_name;
    std::string assignment_rule_id;
    std::string concurrency_mode;
    std::string content_type;
    std::optional<ApiVersion> api_version;
    std::string job_type;     // "V2Ingest", "V2Query", ... (GET only)
    std::string content_url;  // relative, no leading slash; only while Open
    std::optional<csv::Delimiter> column_delimiter;
    std::optional<csv::LineEnding> line_ending;
    std::optional<std::int64_t> number_records_processed;
    std::optional<std::int64_t> number_records_failed;
    std::optional<std::int64_t> retries;
    std::optional<std::int64_t> total_processing_time;
    std::optional<std::int64_t> api_active_processing_time;
    std::optional<std::int64_t> apex_processing_time;
    std::optional<bool> is_pk_chunking_supported;
    std::optional<std::string> error_message;  // verbatim; present when Failed (not always for query jobs)
};

// Parses the create, PATCH and GET shapes (§5.3). Throws sfb::Error(ExternalService) when the body is not a
// JSON object or has no string `id` / `state`; the message never quotes the body.
JobInfo parse_job_info(std::string_view body);

// "2025-11-04T16:20:07.000+0000" (also "+00:00", "Z", no fraction, other offsets) -> ms since the epoch.
std::optional<std::int64_t> parse_salesforce_datetime_ms(std::string_view text);

// A page of GET .../jobs/ingest or .../jobs/query (§6.6). Used to reconcile after a create whose answer was
// lost: look for a job with our object/operation created at about that time.
struct JobList {
    bool done = true;
    std::vector<JobInfo> records;  // entries without id/state are skipped
    // Absolute path (leading slash) of the next page, as given; nullopt when done or null/absent. Only paths
    // under /services/data/ are accepted, so a hostile answer cannot send the next GET elsewhere.
    std::optional<std::string> next_records_url;
};
// Throws sfb::Error(ExternalService) when the body is not a JSON object.
JobList parse_job_list(std::string_view body);

// GET .../jobs/query/{id}/resultPages (§9.4, 58.0+). Accepts "nextRecordsUrl" and "nextRecordUrl".
struct ResultPages {
    std::vector<std::string> result_urls;  // absolute paths under /services/data/ (others dropped)
    std::optional<std::string> next_records_url;
    bool done = true;
};
ResultPages parse_result_pages(std::string_view body);

// ---- errors ----

struct ApiErrorItem {
    std::string error_code;
    std::string message;
    std::vector<std::string> fields;
};

struct ApiError {
    int http_status = 0;
    std::vector<ApiErrorItem> items;  // empty when the body had none we could read
    // When the body was not a Salesforce error (HTML from a proxy, plain text): a short, cleaned excerpt of
    // its text (tags stripped, whitespace collapsed, control bytes dropped, at most 200 bytes); "" for empty
    // bodies.
    std::string body_excerpt;

    const std::string &first_code() const;     // "" when no items
    const std::string &first_message() const;  // "" when no items
    // "HTTP 404 NOT_FOUND: The requested resource does not exist"; several items joined by "; ";
    // "HTTP 503 (empty body)" or "HTTP 502 (unexpected body: Bad Gateway)" otherwise.
    std::string summary() const;
};

// Best effort, never throws: a JSON array of {errorCode, message, fields} (member order irrelevant), a single
// such object, an OAuth-shaped {error, error_description}, or anything else (kept as an excerpt).
ApiError parse_api_error(int http_status, std::string_view body);

// ---- resource paths ----
// Absolute paths to append to instance_url. Job ids are validated as Salesforce ids first (so no caller can
// smuggle "/" or "?" into a path); every function throws sfb::Error(InvalidParameter) on a bad id.

enum class IngestResult { Successful, Failed, Unprocessed };

std::string ingest_jobs_path(const ApiVersion &v);  // .../jobs/ingest
// .../jobs/ingest?jobType=V2Ingest: the list filtered to Bulk 2.0 ingest jobs (§6.6).
std::string ingest_jobs_list_path(const ApiVersion &v);
std::string ingest_job_path(const ApiVersion &v, std::string_view job_id);      // .../jobs/ingest/{id}
std::string ingest_batches_path(const ApiVersion &v, std::string_view job_id);  // .../{id}/batches
// successfulResults, failedResults, unprocessedrecords (exact case, §2.1).
std::string ingest_results_path(const ApiVersion &v, std::string_view job_id, IngestResult kind);
std::string query_jobs_path(const ApiVersion &v);  // .../jobs/query
std::string query_job_path(const ApiVersion &v, std::string_view job_id);
// .../jobs/query/{id}/results[?locator=L][&maxRecords=N]; the locator is opaque and only percent-encoded.
// max_records must be positive when given.
std::string query_results_path(const ApiVersion &v, std::string_view job_id,
                               std::optional<std::string_view> locator = std::nullopt,
                               std::optional<std::int64_t> max_records = std::nullopt);
std::string query_result_pages_path(const ApiVersion &v, std::string_view job_id);  // needs 58.0+

// REST resources beside Bulk API 2.0 that sf_bulk reads before it sends anything: describeGlobal, one
// object's describe (the object name is validated first, like job ids), and the org's limits. Both describes
// answer 304 to If-Modified-Since when nothing changed. Salesforce's REST API Developer Guide:
// https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_describeGlobal.htm,
// .../resources_sobject_describe.htm and .../resources_limits.htm
std::string sobjects_path(const ApiVersion &v);                                   // .../sobjects
std::string sobject_describe_path(const ApiVersion &v, std::string_view object);  // .../sobjects/{o}/describe
std::string limits_path(const ApiVersion &v);                                     // .../limits
// REST query (docs/soql-and-rest.md §1.1): .../query?q=<SOQL>, or .../queryAll?q=... for deleted and
// archived rows too. The statement is percent-encoded, so a '+' in a datetime offset travels as %2B.
std::string rest_query_path(const ApiVersion &v, std::string_view soql, bool all_rows);
// .../limits/recordCount?sObjects=<object> (§5.1).
std::string record_count_path(const ApiVersion &v, std::string_view object);
// The count of `object` in a recordCount answer ({"sObjects":[{"count":N,"name":"Account"}]}), matched
// case-insensitively; nullopt when it is not listed (Salesforce omits empty objects: missing is not zero) or
// the body is not that shape.
std::optional<std::int64_t> parse_record_count(std::string_view body, std::string_view object);

// The `Sforce-Locator` header: nullopt when absent, empty or the literal "null" (last page, §9.3).
std::optional<std::string> next_locator(std::optional<std::string_view> header_value);

// ---- headers ----

struct ApiUsage {
    std::int64_t used = 0;
    std::int64_t max = 0;
};
// "api-usage=27/15000" (possibly among other comma-separated entries such as per-app-api-usage=...).
std::optional<ApiUsage> parse_limit_info(std::string_view header_value);

// ---- per-row errors ----

struct RowError {
    std::string code;                 // "REQUIRED_FIELD_MISSING"; "" when the text had no recognisable code
    std::string message;              // "Required fields are missing: [LastName]"
    std::vector<std::string> fields;  // {"LastName"}; empty for "CODE:message:--"
};
// Splits an sf__Error value (§7.2): "CODE:message:field[,field...] --" or "CODE:message:--", possibly several
// such errors one after another (each one ends in "--"; the next starts with an upper-case CODE followed by
// ':'). Messages may contain ':' themselves ("xsd:date"); the fields part is the text after the last ':' of
// each error only when it looks like a list of field names, otherwise it stays part of the message. Never
// throws; text that matches no error shape comes back as one RowError with an empty code and the whole text
// as message.
std::vector<RowError> split_row_errors(std::string_view sf_error);

}  // namespace sfb
