// What a call of sf_bulk_insert/update/upsert/delete/hard_delete asks for, checked before a single row is
// read: the object, the options and the query's column names. The glue hands plain values in and gets a
// validated spec (or an sfb::Error naming the problem) back.
#pragma once
#include "core/core_only.h"

#include "core/bulk_api.h"
#include "core/csv.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sfb {

struct IngestOptions {
    Operation operation = Operation::Insert;
    std::string object;
    std::optional<std::string> external_id;  // upsert only
    std::string nulls = "keep";              // "keep": empty cell; "clear": #N/A
    std::int64_t max_upload_mb = 100;
    std::optional<std::string> assignment_rule_id;
    std::string line_ending = "LF";
    std::string column_delimiter = "COMMA";
};

struct IngestSpec {
    Operation operation = Operation::Insert;
    std::string object;
    std::string external_id;  // "" unless upsert
    bool nulls_clear = false;
    std::uint64_t max_upload_bytes = 0;
    std::string assignment_rule_id;
    csv::Format format;
    std::vector<std::string> columns;  // the CSV header, as the query named them
};

// Salesforce's ceiling: 150 MB per upload after base64, i.e. 100 MB raw (docs/bulk-api-2.md §6.2).
inline constexpr std::int64_t kMaxUploadMb = 100;
inline constexpr std::uint64_t kBytesPerMb = 1000 * 1000;
// docs/bulk-api-2.md §8: at most 5,000 fields per record.
inline constexpr std::size_t kMaxColumns = 5000;

// The text written for a NULL value.
inline constexpr const char *kSalesforceNull = "#N/A";

// Throws sfb::Error (InvalidParameter) with a message naming the offending option or column.
IngestSpec make_ingest_spec(const IngestOptions &options, const std::vector<std::string> &columns);

// The IngestJobRequest body for one chunk of this spec.
IngestJobRequest job_request_for(const IngestSpec &spec);

}  // namespace sfb
