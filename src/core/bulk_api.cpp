#include "core/bulk_api.h"

#include "core/error.h"
#include "core/text_util.h"
#include "core/oauth.h"
#include "core/sf_names.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace sfb {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// SOQL statements are limited to 100,000 characters by Salesforce; refusing longer ones here gives a clear
// error instead of a 400 from the server.
constexpr std::size_t kMaxSoqlLength = 100000;
constexpr std::size_t kMaxExcerpt = 200;
constexpr std::string_view kJobIdPrefix = "750";

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int &out) {
    if (pos + n > s.size()) {
        return false;
    }
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (!is_digit(s[i])) {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    out = v;
    return true;
}

std::optional<std::string> get_string(const json &o, const char *name) {
    const auto it = o.find(name);
    if (it != o.end() && it->is_string()) {
        return it->get<std::string>();
    }
    return std::nullopt;
}

std::optional<std::int64_t> get_int(const json &o, const char *name) {
    const auto it = o.find(name);
    if (it == o.end()) {
        return std::nullopt;
    }
    if (it->is_number_integer()) {
        return it->get<std::int64_t>();
    }
    if (it->is_number_unsigned()) {
        const auto v = it->get<std::uint64_t>();
        return v > static_cast<std::uint64_t>(INT64_MAX) ? std::nullopt : std::optional<std::int64_t>(v);
    }
    if (it->is_number_float()) {
        const double d = it->get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
            return static_cast<std::int64_t>(d);
        }
        return std::nullopt;
    }
    if (it->is_string()) {
        const auto s = it->get<std::string>();
        if (!s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), is_digit)) {
            return std::stoll(s);
        }
    }
    return std::nullopt;
}

std::string percent_encode(std::string_view s) {
    return form_urlencode(s);
}

std::string dump_checked(const ordered_json &j, const char *what) {
    try {
        return j.dump(-1, ' ', false, json::error_handler_t::strict);
    } catch (const json::type_error &) {
        // nlohmann's message quotes the offending byte; ours names the field only.
        throw Error(ErrorKind::InvalidParameter, std::string(what) + " is not valid UTF-8");
    }
}

std::string job_base(const ApiVersion &v, std::string_view kind) {
    return "/services/data/" + v.segment() + "/jobs/" + std::string(kind);
}

std::string checked_job_id(std::string_view id) {
    validate_record_id(id);
    if (id.substr(0, 3) != kJobIdPrefix) {
        throw Error(ErrorKind::InvalidParameter,
                    "invalid Bulk API job id " + quote_for_message(id, 24) + ": job ids start with 750");
    }
    return std::string(id);
}

// Text for an error message from a body that is not a Salesforce error: tags removed, whitespace collapsed,
// control bytes dropped, cut on a UTF-8 boundary.
std::string excerpt_of(std::string_view body) {
    std::string out;
    bool in_tag = false;
    bool pending_space = false;
    for (char ch : body) {
        const auto c = static_cast<unsigned char>(ch);
        if (in_tag) {
            in_tag = c != '>';
            if (!in_tag) {
                pending_space = true;
            }
            continue;
        }
        if (c == '<') {
            in_tag = true;
            continue;
        }
        if (c < 0x20 || c == 0x7f || c == ' ') {
            pending_space = true;
            continue;
        }
        if (pending_space && !out.empty()) {
            out += ' ';
        }
        pending_space = false;
        out += static_cast<char>(c);
        if (out.size() >= kMaxExcerpt) {
            break;
        }
    }
    if (out.size() >= kMaxExcerpt) {
        out.resize(kMaxExcerpt);
        // Do not leave half a UTF-8 sequence at the end.
        std::size_t n = out.size();
        std::size_t i = n;
        while (i > 0 && (static_cast<unsigned char>(out[i - 1]) & 0xC0) == 0x80) {
            --i;
        }
        if (i > 0 && static_cast<unsigned char>(out[i - 1]) >= 0xC0) {
            const auto lead = static_cast<unsigned char>(out[i - 1]);
            const std::size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (n - (i - 1) < need) {
                out.resize(i - 1);
            }
        }
        out += "...";
    }
    return out;
}

std::optional<ApiErrorItem> error_item(const json &o) {
    if (!o.is_object()) {
        return std::nullopt;
    }
    ApiErrorItem item;
    item.error_code = get_string(o, "errorCode").value_or(get_string(o, "statusCode").value_or(""));
    item.message = get_string(o, "message").value_or("");
    if (item.error_code.empty() && item.message.empty()) {
        // OAuth-shaped answers sometimes reach API routes through proxies.
        item.error_code = get_string(o, "error").value_or("");
        item.message = get_string(o, "error_description").value_or("");
    }
    if (item.error_code.empty() && item.message.empty()) {
        return std::nullopt;
    }
    const auto f = o.find("fields");
    if (f != o.end()) {
        if (f->is_array()) {
            for (const auto &e : *f) {
                if (e.is_string()) {
                    item.fields.push_back(e.get<std::string>());
                }
            }
        } else if (f->is_string()) {
            item.fields.push_back(f->get<std::string>());
        }
    }
    return item;
}

bool is_code_char(char c) {
    return (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

// Length of an error code at `pos` ([A-Z][A-Z0-9_]*) when followed by ':'; 0 otherwise.
std::size_t code_length_at(std::string_view s, std::size_t pos) {
    if (pos >= s.size() || !(s[pos] >= 'A' && s[pos] <= 'Z')) {
        return 0;
    }
    std::size_t i = pos;
    while (i < s.size() && is_code_char(s[i])) {
        ++i;
    }
    return (i < s.size() && s[i] == ':') ? i - pos : 0;
}

std::optional<std::vector<std::string>> as_field_list(std::string_view text) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t comma = text.find(',', start);
        if (comma == std::string_view::npos) {
            comma = text.size();
        }
        const std::string_view f = trim_ascii_space(text.substr(start, comma - start));
        if (!is_valid_column_name(f)) {
            return std::nullopt;
        }
        fields.emplace_back(f);
        start = comma + 1;
    }
    return fields;
}

}  // namespace

// ---- enums ----

std::string_view to_string(Operation op) {
    switch (op) {
        case Operation::Insert:
            return "insert";
        case Operation::Update:
            return "update";
        case Operation::Upsert:
            return "upsert";
        case Operation::Delete:
            return "delete";
        case Operation::HardDelete:
            return "hardDelete";
        case Operation::Query:
            return "query";
        case Operation::QueryAll:
            return "queryAll";
    }
    return "unknown";
}

std::optional<Operation> parse_operation(std::string_view name) {
    for (Operation op : {Operation::Insert, Operation::Update, Operation::Upsert, Operation::Delete,
                         Operation::HardDelete, Operation::Query, Operation::QueryAll}) {
        if (to_string(op) == name) {
            return op;
        }
    }
    return std::nullopt;
}

bool is_ingest_operation(Operation op) {
    return op != Operation::Query && op != Operation::QueryAll;
}

std::string_view to_string(JobState s) {
    switch (s) {
        case JobState::Open:
            return "Open";
        case JobState::UploadComplete:
            return "UploadComplete";
        case JobState::InProgress:
            return "InProgress";
        case JobState::JobComplete:
            return "JobComplete";
        case JobState::Failed:
            return "Failed";
        case JobState::Aborted:
            return "Aborted";
        case JobState::Unknown:
            break;
    }
    return "Unknown";
}

JobState parse_job_state(std::string_view name) {
    for (JobState s : {JobState::Open, JobState::UploadComplete, JobState::InProgress, JobState::JobComplete,
                       JobState::Failed, JobState::Aborted}) {
        if (to_string(s) == name) {
            return s;
        }
    }
    return JobState::Unknown;
}

bool is_terminal(JobState s) {
    return s == JobState::JobComplete || s == JobState::Failed || s == JobState::Aborted;
}

namespace {

// Job info echoes the names we sent; anything else is reported as unknown rather than guessed.
template <typename T, typename Parse>
std::optional<T> parse_or_nothing(const std::string &name, Parse parse) {
    try {
        return parse(name);
    } catch (const Error &) {
        return std::nullopt;
    }
}

}  // namespace

// ---- API versions ----

std::string ApiVersion::str() const {
    return std::to_string(major) + ".0";
}
std::string ApiVersion::segment() const {
    return "v" + str();
}

std::optional<std::string> api_version_error(std::string_view text, ApiKind kind) {
    const int minimum = kind == ApiKind::Query ? kMinQueryApiVersion : kMinIngestApiVersion;
    const std::string expected = "; expected a version such as 62.0 (" + std::to_string(minimum) +
                                 ".0 or later for Bulk API 2.0 " +
                                 (kind == ApiKind::Query ? "query" : "ingest") + ")";
    const std::size_t n = text.size();
    const bool shaped = (n == 4 || n == 5) && text.substr(n - 2) == ".0" && text[0] != '0' &&
                        std::all_of(text.begin(), text.end() - 2, is_digit);
    if (!shaped) {
        return "invalid API version " + quote_for_message(text, 32) + expected;
    }
    int major = 0;
    digits(text, 0, n - 2, major);
    if (major < minimum) {
        return "API version " + std::string(text) + " is too old" + expected;
    }
    return std::nullopt;
}

ApiVersion parse_api_version(std::string_view text, ApiKind kind) {
    if (auto e = api_version_error(text, kind)) {
        throw Error(ErrorKind::InvalidParameter, *e);
    }
    ApiVersion v;
    digits(text, 0, text.size() - 2, v.major);
    return v;
}

std::optional<ApiVersion> api_version_from_job_value(std::string_view text) {
    text = trim_ascii_space(text);
    const std::size_t dot = text.find('.');
    const std::string_view whole = text.substr(0, dot);
    if (whole.empty() || whole.size() > 3 || !std::all_of(whole.begin(), whole.end(), is_digit)) {
        return std::nullopt;
    }
    if (dot != std::string_view::npos) {
        const std::string_view frac = text.substr(dot + 1);
        if (frac.empty() || !std::all_of(frac.begin(), frac.end(), [](char c) { return c == '0'; })) {
            return std::nullopt;
        }
    }
    ApiVersion v;
    digits(whole, 0, whole.size(), v.major);
    return v;
}

// ---- request bodies ----

std::string to_json(const IngestJobRequest &r) {
    validate_object_name(r.object);
    if (!is_ingest_operation(r.operation)) {
        throw Error(ErrorKind::InvalidParameter,
                    "operation " + std::string(to_string(r.operation)) + " is not an ingest operation");
    }
    const bool upsert = r.operation == Operation::Upsert;
    if (upsert) {
        if (r.external_id_field_name.empty()) {
            throw Error(ErrorKind::InvalidParameter, "upsert needs an external id field name");
        }
        validate_field_name(r.external_id_field_name);
    } else if (!r.external_id_field_name.empty()) {
        throw Error(ErrorKind::InvalidParameter, "an external id field name is only used by upsert");
    }
    if (!r.assignment_rule_id.empty()) {
        if (r.operation == Operation::Delete || r.operation == Operation::HardDelete) {
            throw Error(ErrorKind::InvalidParameter,
                        "an assignment rule id is only used by insert, update and upsert");
        }
        validate_record_id(r.assignment_rule_id);
    }
    ordered_json j;
    j["object"] = r.object;
    j["operation"] = to_string(r.operation);
    if (upsert) {
        j["externalIdFieldName"] = r.external_id_field_name;
    }
    j["contentType"] = "CSV";
    j["columnDelimiter"] = csv::salesforce_name(r.column_delimiter);
    j["lineEnding"] = csv::salesforce_name(r.line_ending);
    if (!r.assignment_rule_id.empty()) {
        j["assignmentRuleId"] = r.assignment_rule_id;
    }
    return dump_checked(j, "the job definition");
}

std::string to_json(const QueryJobRequest &r) {
    if (r.operation != Operation::Query && r.operation != Operation::QueryAll) {
        throw Error(ErrorKind::InvalidParameter,
                    "operation " + std::string(to_string(r.operation)) + " is not a query operation");
    }
    if (trim_ascii_space(r.query).empty()) {
        throw Error(ErrorKind::InvalidParameter, "the SOQL query is empty");
    }
    if (r.query.size() > kMaxSoqlLength) {
        throw Error(ErrorKind::InvalidParameter,
                    "the SOQL query is longer than Salesforce's limit of 100000 characters");
    }
    ordered_json j;
    j["operation"] = to_string(r.operation);
    j["query"] = r.query;
    j["contentType"] = "CSV";
    j["columnDelimiter"] = csv::salesforce_name(r.column_delimiter);
    j["lineEnding"] = csv::salesforce_name(r.line_ending);
    return dump_checked(j, "the SOQL query");
}

std::string state_change_body(JobState target) {
    if (target != JobState::UploadComplete && target != JobState::Aborted) {
        throw Error(ErrorKind::InvalidParameter,
                    "a client can only set a job to UploadComplete or Aborted, not " +
                        std::string(to_string(target)));
    }
    return "{\"state\":\"" + std::string(to_string(target)) + "\"}";
}

// ---- job info ----

JobInfo parse_job_info(std::string_view body) {
    const auto bad = [](const char *why) { return Error(ErrorKind::ExternalService, why); };
    const json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        throw bad("Bulk API job answer is not a JSON object");
    }
    JobInfo info;
    const auto id = get_string(j, "id");
    if (!id || id->empty()) {
        throw bad("Bulk API job answer has no job id");
    }
    info.id = *id;
    const auto state = get_string(j, "state");
    if (!state) {
        throw bad("Bulk API job answer has no state");
    }
    info.state_text = *state;
    info.state = parse_job_state(*state);
    info.operation_text = get_string(j, "operation").value_or("");
    info.operation = parse_operation(info.operation_text);
    info.object = get_string(j, "object").value_or("");
    info.created_by_id = get_string(j, "createdById").value_or("");
    info.created_date = get_string(j, "createdDate").value_or("");
    info.system_modstamp = get_string(j, "systemModstamp").value_or("");
    info.external_id_field_name = get_string(j, "externalIdFieldName").value_or("");
    info.assignment_rule_id = get_string(j, "assignmentRuleId").value_or("");
    info.concurrency_mode = get_string(j, "concurrencyMode").value_or("");
    info.content_type = get_string(j, "contentType").value_or("");
    const auto v = j.find("apiVersion");
    if (v != j.end()) {
        if (v->is_number()) {
            const double d = v->get<double>();
            if (std::isfinite(d) && d >= 1 && d < 1000 && d == std::floor(d)) {
                info.api_version = ApiVersion{static_cast<int>(d)};
            }
        } else if (v->is_string()) {
            info.api_version = api_version_from_job_value(v->get<std::string>());
        }
    }
    info.job_type = get_string(j, "jobType").value_or("");
    info.content_url = get_string(j, "contentUrl").value_or("");
    if (auto d = get_string(j, "columnDelimiter")) {
        info.column_delimiter = parse_or_nothing<csv::Delimiter>(*d, csv::parse_delimiter);
    }
    if (auto e = get_string(j, "lineEnding")) {
        info.line_ending = parse_or_nothing<csv::LineEnding>(*e, csv::parse_line_ending);
    }
    info.number_records_processed = get_int(j, "numberRecordsProcessed");
    info.number_records_failed = get_int(j, "numberRecordsFailed");
    info.retries = get_int(j, "retries");
    info.total_processing_time = get_int(j, "totalProcessingTime");
    info.api_active_processing_time = get_int(j, "apiActiveProcessingTime");
    info.apex_processing_time = get_int(j, "apexProcessingTime");
    const auto pk = j.find("isPkChunkingSupported");
    if (pk != j.end() && pk->is_boolean()) {
        info.is_pk_chunking_supported = pk->get<bool>();
    }
    info.error_message = get_string(j, "errorMessage");
    return info;
}

std::optional<std::int64_t> parse_salesforce_datetime_ms(std::string_view t) {
    int y, mo, d, h, mi, s;
    if (!digits(t, 0, 4, y) || t.size() < 19 || t[4] != '-' || !digits(t, 5, 2, mo) || t[7] != '-' ||
        !digits(t, 8, 2, d) || t[10] != 'T' || !digits(t, 11, 2, h) || t[13] != ':' ||
        !digits(t, 14, 2, mi) || t[16] != ':' || !digits(t, 17, 2, s)) {
        return std::nullopt;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    int ms = 0;
    if (pos < t.size() && t[pos] == '.') {
        ++pos;
        int scale = 100;
        const std::size_t start = pos;
        while (pos < t.size() && is_digit(t[pos])) {
            ms += (t[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos == start) {
            return std::nullopt;
        }
    }
    int offset_minutes = 0;
    const std::string_view zone = t.substr(pos);
    if (zone == "Z") {
        offset_minutes = 0;
    } else if (zone.size() == 5 || zone.size() == 6) {
        const int sign = zone[0] == '+' ? 1 : zone[0] == '-' ? -1 : 0;
        int oh, om;
        const std::size_t mpos = zone.size() == 6 ? 4 : 3;
        if (sign == 0 || !digits(zone, 1, 2, oh) || (zone.size() == 6 && zone[3] != ':') ||
            !digits(zone, mpos, 2, om)) {
            return std::nullopt;
        }
        offset_minutes = sign * (oh * 60 + om);
    } else {
        return std::nullopt;
    }
    const std::int64_t secs =
        days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 + mi * 60 +
        s - offset_minutes * 60;
    return secs * 1000 + ms;
}

namespace {

// A continuation or result URL from the server: must be an absolute path below /services/data/.
std::optional<std::string> service_path(const json &o, const char *name) {
    auto v = get_string(o, name);
    if (!v || v->rfind("/services/data/", 0) != 0 || v->find("..") != std::string::npos) {
        return std::nullopt;
    }
    return v;
}

bool done_flag(const json &o) {
    const auto done = o.find("done");
    return done == o.end() || !done->is_boolean() || done->get<bool>();
}

}  // namespace

JobList parse_job_list(std::string_view body) {
    const json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        throw Error(ErrorKind::ExternalService, "Bulk API job list answer is not a JSON object");
    }
    JobList list;
    list.done = done_flag(j);
    const auto records = j.find("records");
    if (records != j.end() && records->is_array()) {
        for (const auto &r : *records) {
            if (r.is_object() && get_string(r, "id") && get_string(r, "state")) {
                list.records.push_back(parse_job_info(r.dump()));
            }
        }
    }
    if (!list.done) {
        list.next_records_url = service_path(j, "nextRecordsUrl");
    }
    return list;
}

ResultPages parse_result_pages(std::string_view body) {
    const json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        throw Error(ErrorKind::ExternalService, "Bulk API resultPages answer is not a JSON object");
    }
    ResultPages pages;
    const auto list = j.find("resultPages");
    if (list != j.end() && list->is_array()) {
        for (const auto &p : *list) {
            if (p.is_object()) {
                if (auto url = service_path(p, "resultUrl")) {
                    pages.result_urls.push_back(std::move(*url));
                }
            }
        }
    }
    pages.done = done_flag(j);
    if (!pages.done) {
        pages.next_records_url = service_path(j, "nextRecordsUrl");
        if (!pages.next_records_url) {
            pages.next_records_url =
                service_path(j, "nextRecordUrl");  // the documentation's field-table spelling
        }
    }
    return pages;
}

// ---- errors ----

const std::string &ApiError::first_code() const {
    static const std::string &empty = *new std::string();  // leaked: no destructor at exit
    return items.empty() ? empty : items.front().error_code;
}

const std::string &ApiError::first_message() const {
    static const std::string &empty = *new std::string();
    return items.empty() ? empty : items.front().message;
}

std::string ApiError::summary() const {
    std::string s = "HTTP " + std::to_string(http_status);
    if (items.empty()) {
        return s + (body_excerpt.empty() ? " (empty body)" : " (unexpected body: " + body_excerpt + ")");
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
        s += i == 0 ? " " : "; ";
        const auto &it = items[i];
        s += it.error_code;
        if (!it.message.empty()) {
            s += (it.error_code.empty() ? "" : ": ") + it.message;
        }
        if (!it.fields.empty()) {
            s += " (fields:";
            for (const auto &f : it.fields) {
                s += " " + f;
            }
            s += ")";
        }
    }
    return s;
}

ApiError parse_api_error(int http_status, std::string_view body) {
    ApiError e;
    e.http_status = http_status;
    const std::string_view trimmed = trim_ascii_space(body);
    if (trimmed.empty()) {
        return e;
    }
    const json j = json::parse(trimmed.begin(), trimmed.end(), nullptr, false);
    if (!j.is_discarded()) {
        if (j.is_array()) {
            for (const auto &el : j) {
                if (auto item = error_item(el)) {
                    e.items.push_back(std::move(*item));
                }
            }
        } else if (auto item = error_item(j)) {
            e.items.push_back(std::move(*item));
        }
    }
    if (e.items.empty()) {
        e.body_excerpt = excerpt_of(trimmed);
    }
    return e;
}

// ---- resource paths ----

std::string ingest_jobs_path(const ApiVersion &v) {
    return job_base(v, "ingest");
}

std::string ingest_jobs_list_path(const ApiVersion &v) {
    return job_base(v, "ingest") + "?jobType=V2Ingest";
}

std::string ingest_job_path(const ApiVersion &v, std::string_view job_id) {
    return job_base(v, "ingest") + "/" + checked_job_id(job_id);
}

std::string ingest_batches_path(const ApiVersion &v, std::string_view job_id) {
    return ingest_job_path(v, job_id) + "/batches";
}

std::string ingest_results_path(const ApiVersion &v, std::string_view job_id, IngestResult kind) {
    const char *leaf = kind == IngestResult::Successful ? "/successfulResults"
                       : kind == IngestResult::Failed   ? "/failedResults"
                                                        : "/unprocessedrecords";
    return ingest_job_path(v, job_id) + leaf;
}

std::string query_jobs_path(const ApiVersion &v) {
    return job_base(v, "query");
}

std::string sobjects_path(const ApiVersion &v) {
    return "/services/data/" + v.segment() + "/sobjects";
}

std::string sobject_describe_path(const ApiVersion &v, std::string_view object) {
    validate_object_name(object);
    return sobjects_path(v) + "/" + std::string(object) + "/describe";
}

std::string limits_path(const ApiVersion &v) {
    return "/services/data/" + v.segment() + "/limits";
}

std::string rest_query_path(const ApiVersion &v, std::string_view soql, bool all_rows) {
    return "/services/data/" + v.segment() + (all_rows ? "/queryAll?q=" : "/query?q=") + percent_encode(soql);
}

std::string record_count_path(const ApiVersion &v, std::string_view object) {
    validate_object_name(object);
    return limits_path(v) + "/recordCount?sObjects=" + std::string(object);
}

std::optional<std::int64_t> parse_record_count(std::string_view body, std::string_view object) {
    const json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (!j.is_object() || !j.contains("sObjects") || !j["sObjects"].is_array())
        return std::nullopt;
    for (const json &entry : j["sObjects"]) {
        if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
            !entry.contains("count") || !entry["count"].is_number_integer())
            continue;
        if (ascii_iequals(entry["name"].get<std::string>(), object))
            return entry["count"].get<std::int64_t>();
    }
    return std::nullopt;
}

std::string query_job_path(const ApiVersion &v, std::string_view job_id) {
    return job_base(v, "query") + "/" + checked_job_id(job_id);
}

std::string query_results_path(const ApiVersion &v, std::string_view job_id,
                               std::optional<std::string_view> locator,
                               std::optional<std::int64_t> max_records) {
    std::string p = query_job_path(v, job_id) + "/results";
    char sep = '?';
    if (locator) {
        if (locator->empty() || *locator == "null") {
            throw Error(ErrorKind::InvalidParameter,
                        "\"null\" or empty locator: there is no next page to fetch");
        }
        p += sep + std::string("locator=") + percent_encode(*locator);
        sep = '&';
    }
    if (max_records) {
        if (*max_records <= 0) {
            throw Error(ErrorKind::InvalidParameter, "maxRecords must be positive");
        }
        p += sep + std::string("maxRecords=") + std::to_string(*max_records);
    }
    return p;
}

std::string query_result_pages_path(const ApiVersion &v, std::string_view job_id) {
    if (v.major < kMinResultPagesApiVersion) {
        throw Error(ErrorKind::InvalidParameter,
                    "resultPages needs API version 58.0 or later, not " + v.str());
    }
    return query_job_path(v, job_id) + "/resultPages";
}

std::optional<std::string> next_locator(std::optional<std::string_view> header_value) {
    if (!header_value) {
        return std::nullopt;
    }
    const std::string_view v = trim_ascii_space(*header_value);
    if (v.empty() || v == "null") {
        return std::nullopt;
    }
    return std::string(v);
}

// ---- headers ----

std::optional<ApiUsage> parse_limit_info(std::string_view header_value) {
    constexpr std::string_view key = "api-usage=";
    std::size_t pos = 0;
    while ((pos = header_value.find(key, pos)) != std::string_view::npos) {
        // Must be its own entry, not the tail of "per-app-api-usage=".
        if (pos == 0 || header_value[pos - 1] == ',' || is_ascii_space(header_value[pos - 1])) {
            break;
        }
        pos += key.size();
    }
    if (pos == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view rest = header_value.substr(pos + key.size());
    const auto number = [&](std::int64_t &out) {
        std::size_t i = 0;
        out = 0;
        while (i < rest.size() && is_digit(rest[i]) && i < 18) {
            out = out * 10 + (rest[i] - '0');
            ++i;
        }
        rest.remove_prefix(i);
        return i > 0;
    };
    ApiUsage u;
    if (!number(u.used) || rest.empty() || rest.front() != '/') {
        return std::nullopt;
    }
    rest.remove_prefix(1);
    if (!number(u.max)) {
        return std::nullopt;
    }
    return u;
}

// ---- per-row errors ----

std::vector<RowError> split_row_errors(std::string_view sf_error) {
    const std::string_view s = trim_ascii_space(sf_error);
    std::vector<RowError> out;
    if (s.empty()) {
        return out;
    }
    std::size_t pos = 0;
    while (pos < s.size()) {
        const std::size_t code_len = code_length_at(s, pos);
        if (code_len == 0) {
            break;
        }
        const std::size_t body_start = pos + code_len + 1;
        // The error ends at a "--" preceded by ':' or ' ' and followed by the end or by the next CODE:.
        std::size_t term = std::string_view::npos;
        std::size_t next = s.size();
        for (std::size_t t = s.find("--", body_start); t != std::string_view::npos; t = s.find("--", t + 1)) {
            if (t == body_start || (s[t - 1] != ':' && s[t - 1] != ' ')) {
                continue;
            }
            std::size_t after = t + 2;
            while (after < s.size() && is_ascii_space(s[after])) {
                ++after;
            }
            if (after == s.size() || code_length_at(s, after) > 0) {
                term = t;
                next = after;
                break;
            }
        }
        std::string_view body =
            s.substr(body_start, (term == std::string_view::npos ? s.size() : term) - body_start);
        if (!body.empty() && body.back() == ' ') {
            body.remove_suffix(1);
        }
        RowError e;
        e.code = std::string(s.substr(pos, code_len));
        const std::size_t colon = body.rfind(':');
        if (term != std::string_view::npos && colon != std::string_view::npos) {
            const std::string_view fields_text = body.substr(colon + 1);
            if (fields_text.empty()) {
                e.message = std::string(body.substr(0, colon));
            } else if (auto fields = as_field_list(fields_text)) {
                e.message = std::string(body.substr(0, colon));
                e.fields = std::move(*fields);
            } else {
                e.message = std::string(body);
            }
        } else {
            e.message = std::string(body);
        }
        out.push_back(std::move(e));
        pos = next;
    }
    if (out.empty() || pos < s.size()) {
        // Unrecognised text (or trailing garbage): keep everything, never lose what the server said.
        out.clear();
        out.push_back(RowError{"", std::string(s), {}});
    }
    return out;
}

}  // namespace sfb
