#include "core/ingest_spec.h"

#include "core/error.h"
#include "core/sf_names.h"

#include <algorithm>
#include <cctype>
#include <unordered_map>

namespace sfb {

namespace {

[[noreturn]] void invalid(const std::string &message) {
    throw Error(ErrorKind::InvalidParameter, message);
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool same_name(std::string_view a, std::string_view b) {
    return lower(a) == lower(b);
}

// Salesforce matches header names case-insensitively, so "Name" and "name" would be the same field twice.
void check_columns(const IngestSpec &spec) {
    const std::vector<std::string> &columns = spec.columns;
    if (columns.empty())
        invalid("the query returns no columns; select the Salesforce fields to send, named as the fields");
    if (columns.size() > kMaxColumns)
        invalid("the query returns " + std::to_string(columns.size()) +
                " columns; Salesforce accepts at most " + std::to_string(kMaxColumns));
    std::unordered_map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < columns.size(); ++i) {
        if (auto problem = column_name_error(columns[i]))
            invalid("column " + std::to_string(i + 1) + " of the query: " + *problem);
        auto [it, inserted] = seen.emplace(lower(columns[i]), i);
        if (!inserted)
            invalid("the query returns the column " + quote_for_message(columns[i]) + " twice (columns " +
                    std::to_string(it->second + 1) + " and " + std::to_string(i + 1) +
                    "); Salesforce field names are case-insensitive");
    }

    auto has = [&](std::string_view name) {
        return std::any_of(columns.begin(), columns.end(),
                           [&](const std::string &c) { return same_name(c, name); });
    };
    switch (spec.operation) {
        case Operation::Upsert:
            if (!has(spec.external_id))
                invalid("the query has no column " + quote_for_message(spec.external_id) +
                        ", the external id upsert matches on; add it to the select list (e.g. ext_id AS \"" +
                        spec.external_id + "\")");
            break;
        case Operation::Update:
            if (!has("Id"))
                invalid("update needs an \"Id\" column with the Salesforce record ids; the query has none");
            break;
        case Operation::Delete:
        case Operation::HardDelete:
            if (columns.size() != 1 || !same_name(columns[0], "Id"))
                invalid(std::string(to_string(spec.operation)) +
                        " takes exactly one column, \"Id\", with the Salesforce record ids to delete");
            break;
        default:
            break;
    }
}

}  // namespace

IngestSpec make_ingest_spec(const IngestOptions &options, const std::vector<std::string> &columns) {
    IngestSpec spec;
    if (!is_ingest_operation(options.operation))
        invalid("operation " + std::string(to_string(options.operation)) + " is not an ingest operation");
    spec.operation = options.operation;

    if (auto problem = object_name_error(options.object))
        invalid(*problem);
    spec.object = options.object;

    if (options.operation == Operation::Upsert) {
        if (!options.external_id || options.external_id->empty())
            invalid("upsert needs external_id: the Salesforce external-id field (or Id) to match records on");
        if (auto problem = field_name_error(*options.external_id))
            invalid("external_id: " + *problem);
        spec.external_id = *options.external_id;
    } else if (options.external_id) {
        invalid("external_id is only used by upsert");
    }

    if (options.nulls == "clear")
        spec.nulls_clear = true;
    else if (options.nulls != "keep")
        invalid("invalid value for nulls: " + quote_for_message(options.nulls) +
                "; expected 'keep' (NULL leaves the Salesforce field as it is) or 'clear' (NULL empties it)");

    if (options.max_upload_mb < 1 || options.max_upload_mb > kMaxUploadMb)
        invalid("invalid value for max_upload_mb: " + std::to_string(options.max_upload_mb) +
                "; expected 1 to " + std::to_string(kMaxUploadMb) + " (Salesforce's limit per upload)");
    spec.max_upload_bytes = static_cast<std::uint64_t>(options.max_upload_mb) * kBytesPerMb;

    if (options.assignment_rule_id) {
        if (options.operation == Operation::Delete || options.operation == Operation::HardDelete)
            invalid("assignment_rule_id is only used by insert, update and upsert");
        if (auto problem = record_id_error(*options.assignment_rule_id))
            invalid("invalid assignment_rule_id: " + *problem);
        spec.assignment_rule_id = *options.assignment_rule_id;
    }

    try {
        spec.format.line_ending = csv::parse_line_ending(options.line_ending);
        spec.format.delimiter = csv::parse_delimiter(options.column_delimiter);
    } catch (const Error &e) {
        invalid(e.what());
    }

    spec.columns = columns;
    check_columns(spec);
    return spec;
}

IngestJobRequest job_request_for(const IngestSpec &spec) {
    IngestJobRequest request;
    request.object = spec.object;
    request.operation = spec.operation;
    request.external_id_field_name = spec.external_id;
    request.column_delimiter = spec.format.delimiter;
    request.line_ending = spec.format.line_ending;
    request.assignment_rule_id = spec.assignment_rule_id;
    return request;
}

}  // namespace sfb
