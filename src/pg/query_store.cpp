// The query kind's SQL (query_store.h). Same shape as job_store.cpp: C++ values prepared before the
// transaction, a body of PostgreSQL calls only, C++ parsing of what was read after it.
#include "query_store.h"

#include "core/csv.h"
#include "core/error.h"
#include "core/fdw_options.h"
#include "core/soql_select.h"
#include "core/spool_names.h"
#include "core/text_util.h"
#include "job_store.h"
#include "spi_columns.h"
#include "org_access.h"
#include "query_load.h"
#include "spool.h"

#include "pg_headers.h"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
}

#include "guard.h"
#include "worker.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <utility>

namespace sfb::pg {

namespace {

// ---- reading

std::optional<std::string> optional_string(const char *value) {
    return value ? std::optional<std::string>(value) : std::nullopt;
}

template <typename T>
T known_value(std::optional<T> parsed, const char *column, const std::string &value) {
    if (!parsed)
        throw Error(ErrorKind::InvalidParameter, std::string("sf_bulk.") + column + " holds \"" + value +
                                                     "\", which this version of sf_bulk does not know");
    return *parsed;
}

struct StoredQuery {
    int64 job_id = 0;
    int attempts = 0;
    int64 records_processed = 0, not_before_ms = -1;
    bool page_list_done = false;
    std::uint32_t owner = 0;
    std::string api_version, step, sf_job_id, sf_state, error, operation, soql, column_delimiter, server;
    std::optional<std::string> page_list_url;
};

struct StoredPage {
    int64 job_id = 0;
    int page_no = 0, attempts = 0;
    int64 records = 0, bytes = 0, not_before_ms = -1, page_size = -1;
    std::uint32_t owner = 0;
    std::string path_or_locator, spool_file, step, error, api_version, sf_job_id, server;
    std::optional<std::string> next_locator;
};

using ServerOptions = std::map<std::string, std::optional<OptionList>>;

// The server's options, read in the same snapshot (PostgreSQL calls only besides the map).
void read_server(const std::string &name, ServerOptions &servers) {
    if (servers.count(name))
        return;
    std::optional<OptionList> &options = servers[name];
    ForeignServer *server = GetForeignServerByName(name.c_str(), true);
    if (server == nullptr)
        return;
    options.emplace();
    read_options(server->options, *options);
}

std::string server_problem(const std::string &name, const ServerOptions &servers) {
    auto found = servers.find(name);
    if (found == servers.end() || !found->second)
        return "server \"" + name + "\" no longer exists";
    try {
        (void)server_settings(*found->second);
    } catch (const Error &e) {
        return e.what();
    }
    return "";
}

QueryJobRow parse_query(const StoredQuery &s, const ServerOptions &servers) {
    QueryJobRow row;
    row.job_id = s.job_id;
    row.org = OrgKey{s.server, s.owner};
    try {
        row.record.step = known_value(parse_query_job_step(s.step), "queries.step", s.step);
        row.record.sf_job_id = s.sf_job_id;
        row.record.sf_state = s.sf_state;
        row.record.records_processed = s.records_processed;
        row.record.attempts = s.attempts;
        if (s.not_before_ms >= 0)
            row.record.not_before_ms = s.not_before_ms;
        row.record.error = s.error;
        row.record.page_list_url = s.page_list_url;
        row.record.page_list_done = s.page_list_done;
        row.spec.api_version = parse_api_version(s.api_version, ApiKind::Query);
        row.spec.job.operation = known_value(parse_operation(s.operation), "jobs.operation", s.operation);
        row.spec.job.query = s.soql;
        row.spec.job.column_delimiter = csv::parse_delimiter(s.column_delimiter);
    } catch (const Error &e) {
        row.unreadable = e.what();
        return row;
    }
    row.server_problem = server_problem(s.server, servers);
    return row;
}

QueryPageRow parse_page(const StoredPage &s, const ServerOptions &servers) {
    QueryPageRow row;
    row.job_id = s.job_id;
    row.org = OrgKey{s.server, s.owner};
    row.record.page_no = s.page_no;
    try {
        row.record.path_or_locator = s.path_or_locator;
        row.record.step = known_value(parse_query_page_step(s.step), "query_pages.step", s.step);
        row.record.records = s.records;
        row.record.bytes = s.bytes;
        row.record.next_locator = s.next_locator;
        row.record.attempts = s.attempts;
        if (s.not_before_ms >= 0)
            row.record.not_before_ms = s.not_before_ms;
        row.record.error = s.error;
        row.spec.api_version = parse_api_version(s.api_version, ApiKind::Query);
        row.spec.sf_job_id = s.sf_job_id;
        if (s.page_size > 0)
            row.spec.page_size = s.page_size;
        row.spec.download_file = s.spool_file;
    } catch (const Error &e) {
        row.unreadable = e.what();
        return row;
    }
    row.server_problem = server_problem(s.server, servers);
    return row;
}

// ---- writing

const char *phase_of(QueryJobStep step) {
    switch (step) {
        case QueryJobStep::Pending:
        case QueryJobStep::Creating:
        case QueryJobStep::Polling:
            return "querying";
        case QueryJobStep::Listing:
            return "listing result pages";
        case QueryJobStep::Downloading:
            return "downloading";
        case QueryJobStep::Loading:
            return "loading";
        case QueryJobStep::Done:
        case QueryJobStep::Failed:
        case QueryJobStep::Aborted:
            break;
    }
    return nullptr;  // final: the job has ended
}

const char *job_state_of(QueryJobStep step) {
    switch (step) {
        case QueryJobStep::Done:
            return "completed";
        case QueryJobStep::Failed:
            return "failed";
        case QueryJobStep::Aborted:
            return "aborted";
        default:
            return nullptr;
    }
}

// A job step's values as the SQL needs them, built before any transaction starts.
struct JobStepValues {
    const QueryStepRecord &step;
    const QueryJobRecord &record;
    std::string step_name;
    const char *phase;
    const char *state;  // the job's final state, nullptr while it runs
    std::vector<std::string> page_files;
    const std::vector<QueryPageSpec> &pages;
    int64 rows_loaded = -1;  // -1: not a load
};

JobStepValues job_step_values(const QueryStepRecord &step, const QueryJobRecord &record,
                              const std::vector<QueryPageSpec> &pages) {
    JobStepValues v{
        step, record, std::string(to_string(record.step)), phase_of(record.step), job_state_of(record.step),
        {},   pages};
    if (!pages.empty()) {
        std::string prefix = job_file_prefix(step.job_id);
        for (const QueryPageSpec &page : pages)
            v.page_files.push_back(query_page_file_name(prefix, page.page_no));
    }
    return v;
}

// PostgreSQL calls only.
void write_job_step(const JobStepValues &v) {
    const QueryJobRecord &r = v.record;
    Oid types[10] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID,
                     INT4OID, INT8OID, TEXTOID, TEXTOID, BOOLOID};
    Datum values[10] = {Int64GetDatum(v.step.job_id),
                        CStringGetTextDatum(v.step_name.c_str()),
                        CStringGetTextDatum(r.sf_job_id.c_str()),
                        CStringGetTextDatum(r.sf_state.c_str()),
                        Int64GetDatum(r.records_processed),
                        Int32GetDatum(r.attempts),
                        Int64GetDatum(r.not_before_ms.value_or(0)),
                        CStringGetTextDatum(r.error.c_str()),
                        r.page_list_url ? CStringGetTextDatum(r.page_list_url->c_str()) : Datum(0),
                        BoolGetDatum(r.page_list_done)};
    char nulls[10] = {
        ' ', ' ', ' ', ' ', ' ', ' ', r.not_before_ms ? ' ' : 'n', ' ', r.page_list_url ? ' ' : 'n', ' '};
    if (SPI_execute_with_args(
            "UPDATE sf_bulk.queries SET step = $2, sf_job_id = nullif($3, ''), sf_state = nullif($4, ''), "
            "records_processed = $5, attempts = $6, not_before = pg_catalog.to_timestamp($7 / 1000.0), "
            "error = nullif($8, ''), page_list_url = $9, page_list_done = $10, updated_at = pg_catalog.now() "
            "WHERE job_id OPERATOR(pg_catalog.=) $1",
            10, types, values, nulls, false, 0) != SPI_OK_UPDATE ||
        SPI_processed != 1)
        elog(ERROR, "could not record the query job's step");
    for (size_t i = 0; i < v.pages.size(); ++i) {
        Oid page_types[4] = {INT8OID, INT4OID, TEXTOID, TEXTOID};
        Datum page_values[4] = {Int64GetDatum(v.step.job_id), Int32GetDatum(v.pages[i].page_no),
                                CStringGetTextDatum(v.pages[i].path_or_locator.c_str()),
                                CStringGetTextDatum(v.page_files[i].c_str())};
        if (SPI_execute_with_args("INSERT INTO sf_bulk.query_pages (job_id, page_no, path_or_locator, "
                                  "spool_file) VALUES ($1, $2, $3, $4)",
                                  4, page_types, page_values, nullptr, false, 0) != SPI_OK_INSERT)
            elog(ERROR, "could not record a result page");
    }
    // A final step ends the job in the same transaction: nothing can happen between the two.
    Oid job_types[7] = {INT8OID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, INT8OID};
    Datum job_values[7] = {Int64GetDatum(v.step.job_id),
                           v.phase ? CStringGetTextDatum(v.phase) : Datum(0),
                           Int32GetDatum(v.step.api_calls),
                           CStringGetTextDatum(v.step.org_api_usage.c_str()),
                           v.state ? CStringGetTextDatum(v.state) : Datum(0),
                           CStringGetTextDatum(r.error.c_str()),
                           Int64GetDatum(v.rows_loaded)};
    char job_nulls[7] = {' ', v.phase ? ' ' : 'n',           ' ', ' ', v.state ? ' ' : 'n',
                         ' ', v.rows_loaded >= 0 ? ' ' : 'n'};
    if (SPI_execute_with_args(
            "UPDATE sf_bulk.jobs SET phase = $2, api_calls = api_calls + $3, "
            "org_api_usage = coalesce(nullif($4, ''), org_api_usage), "
            "state = coalesce($5, state), "
            "error = CASE WHEN $5 IS NULL THEN error WHEN $5 OPERATOR(pg_catalog.=) 'completed' THEN NULL "
            "ELSE nullif($6, '') END, "
            "finished_at = CASE WHEN $5 IS NULL THEN finished_at ELSE pg_catalog.now() END, "
            "rows_loaded = coalesce($7, rows_loaded) "
            "WHERE id OPERATOR(pg_catalog.=) $1",
            7, job_types, job_values, job_nulls, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not record the query job's phase");
}

struct PageStepValues {
    const QueryStepRecord &step;
    const QueryPageRecord &record;
    std::string step_name;
};

void write_page_step(const PageStepValues &v) {
    const QueryPageRecord &r = v.record;
    Oid types[9] = {INT8OID, INT4OID, TEXTOID, INT8OID, INT8OID, TEXTOID, INT4OID, INT8OID, TEXTOID};
    Datum values[9] = {Int64GetDatum(v.step.job_id),
                       Int32GetDatum(r.page_no),
                       CStringGetTextDatum(v.step_name.c_str()),
                       Int64GetDatum(r.records),
                       Int64GetDatum(r.bytes),
                       r.next_locator ? CStringGetTextDatum(r.next_locator->c_str()) : Datum(0),
                       Int32GetDatum(r.attempts),
                       Int64GetDatum(r.not_before_ms.value_or(0)),
                       CStringGetTextDatum(r.error.c_str())};
    char nulls[9] = {' ', ' ', ' ', ' ', ' ', r.next_locator ? ' ' : 'n', ' ', r.not_before_ms ? ' ' : 'n',
                     ' '};
    if (SPI_execute_with_args(
            "UPDATE sf_bulk.query_pages SET step = $3, records = $4, bytes = $5, next_locator = $6, "
            "attempts = $7, not_before = pg_catalog.to_timestamp($8 / 1000.0), error = nullif($9, ''), "
            "updated_at = pg_catalog.now() "
            "WHERE job_id OPERATOR(pg_catalog.=) $1 AND page_no OPERATOR(pg_catalog.=) $2",
            9, types, values, nulls, false, 0) != SPI_OK_UPDATE ||
        SPI_processed != 1)
        elog(ERROR, "could not record the result page's step");
    Oid job_types[3] = {INT8OID, INT4OID, TEXTOID};
    Datum job_values[3] = {Int64GetDatum(v.step.job_id), Int32GetDatum(v.step.api_calls),
                           CStringGetTextDatum(v.step.org_api_usage.c_str())};
    if (SPI_execute_with_args("UPDATE sf_bulk.jobs SET api_calls = api_calls + $2, "
                              "org_api_usage = coalesce(nullif($3, ''), org_api_usage) "
                              "WHERE id OPERATOR(pg_catalog.=) $1",
                              3, job_types, job_values, nullptr, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not record the query job's calls");
}

// ---- the load

struct StoredPlan {
    std::string schema, table, mode, delimiter;
    std::uint32_t owner = 0;
    std::uint32_t target_relid = 0;   // the table the name named at the call (0: not recorded)
    std::vector<std::string> fields;  // the job's columns: field paths as selected
    std::vector<int> page_nos;
    std::vector<std::string> page_files, page_steps;
    std::vector<std::int64_t> page_bytes;  // as recorded when each page was downloaded
};

// PostgreSQL calls, and assignments to `plan` (owned by the caller, outside the transaction's pg_call).
void read_plan(int64 job_id, StoredPlan &plan) {
    Oid types[1] = {INT8OID};
    Datum values[1] = {Int64GetDatum(job_id)};
    if (SPI_execute_with_args(
            "SELECT target_schema::text, target_table::text, load_mode, column_delimiter, "
            "owner::oid, pg_catalog.array_to_string(columns, ','), coalesce(target_relid, 0) "
            "FROM sf_bulk.jobs WHERE id OPERATOR(pg_catalog.=) $1",
            1, types, values, nullptr, true, 1) != SPI_OK_SELECT ||
        SPI_processed != 1)
        elog(ERROR, "sf_bulk query job " INT64_FORMAT " is gone", job_id);
    HeapTuple t = SPI_tuptable->vals[0];
    TupleDesc d = SPI_tuptable->tupdesc;
    bool is_null;
    plan.schema = text_column(t, d, 1);
    plan.table = text_column(t, d, 2);
    plan.mode = text_column(t, d, 3);
    plan.delimiter = text_column(t, d, 4);
    plan.owner = DatumGetObjectId(SPI_getbinval(t, d, 5, &is_null));
    plan.target_relid = DatumGetObjectId(SPI_getbinval(t, d, 7, &is_null));
    {
        // Field paths are Salesforce names (letters, digits, '_', '.'): no comma inside one. In a block of
        // its own: the strings must be gone before the next PostgreSQL call, which may raise.
        plan.fields = split_at_commas(text_column(t, d, 6));
    }
    if (SPI_execute_with_args("SELECT page_no, spool_file, step, bytes FROM sf_bulk.query_pages "
                              "WHERE job_id OPERATOR(pg_catalog.=) $1 ORDER BY page_no",
                              1, types, values, nullptr, true, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not read the result pages of sf_bulk query job " INT64_FORMAT, job_id);
    for (uint64 i = 0; i < SPI_processed; ++i) {
        HeapTuple p = SPI_tuptable->vals[i];
        plan.page_nos.push_back(int4_column(p, SPI_tuptable->tupdesc, 1));
        plan.page_files.push_back(text_column(p, SPI_tuptable->tupdesc, 2));
        plan.page_steps.push_back(text_column(p, SPI_tuptable->tupdesc, 3));
        plan.page_bytes.push_back(int8_column(p, SPI_tuptable->tupdesc, 4, -1));
    }
}

struct HeaderRead {};  // stops the reader once the header record is in

// The header record of a page file; nullopt when the file is empty (no header, no rows).
std::optional<std::vector<std::string>> read_header(const std::string &path, csv::Delimiter delimiter,
                                                    int page_no) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw Error(ErrorKind::DataException,
                    "the file of result page " + std::to_string(page_no) + " is missing: " + path);
    std::optional<std::vector<std::string>> header;
    csv::Reader reader(csv::ReaderOptions{delimiter}, [&header](const std::vector<std::string_view> &fields) {
        header.emplace(fields.begin(), fields.end());
        throw HeaderRead{};
    });
    char buffer[65536];
    try {
        while (in) {
            in.read(buffer, sizeof buffer);
            if (in.gcount() > 0)
                reader.feed(buffer, static_cast<size_t>(in.gcount()));
        }
        reader.finish();
    } catch (const HeaderRead &) {
    }
    return header;
}

std::string joined(const std::vector<std::string> &names) {
    std::string out;
    for (const std::string &n : names)
        out += (out.empty() ? "" : ", ") + n;
    return out;
}

// The target columns in the files' order, checked: every page's header maps (soql_column_name) to exactly
// the job's columns. Pages without any content are dropped from the plan.
std::vector<std::string> check_headers(int64 job_id, StoredPlan &plan) {
    csv::Delimiter delimiter = csv::parse_delimiter(plan.delimiter);
    std::vector<std::string> expected;
    for (const std::string &field : plan.fields)
        expected.push_back(soql_column_name(field));
    std::set<std::string> expected_set(expected.begin(), expected.end());
    std::optional<std::vector<std::string>> columns;
    StoredPlan kept = plan;
    kept.page_nos.clear();
    kept.page_files.clear();
    for (size_t i = 0; i < plan.page_files.size(); ++i) {
        int page_no = plan.page_nos[i];
        if (plan.page_steps[i] != "downloaded")
            throw Error(ErrorKind::Internal, "result page " + std::to_string(page_no) +
                                                 " of sf_bulk query job " + std::to_string(job_id) +
                                                 " is not downloaded");
        // The file as it was downloaded, or the job fails: a file that a crash of the machine cut short
        // would otherwise load as a page with fewer rows.
        std::error_code size_error;
        const std::uintmax_t size = std::filesystem::file_size(plan.page_files[i], size_error);
        if (!size_error && plan.page_bytes[i] >= 0 && size != static_cast<std::uintmax_t>(plan.page_bytes[i]))
            throw Error(ErrorKind::DataException, "the file of result page " + std::to_string(page_no) +
                                                      " holds " + std::to_string(size) + " bytes, but " +
                                                      std::to_string(plan.page_bytes[i]) +
                                                      " were downloaded; it was damaged after the download");
        std::optional<std::vector<std::string>> header = read_header(plan.page_files[i], delimiter, page_no);
        if (!header)
            continue;
        std::vector<std::string> mapped;
        for (const std::string &name : *header)
            mapped.push_back(soql_column_name(name));
        std::set<std::string> mapped_set(mapped.begin(), mapped.end());
        if (mapped_set != expected_set || mapped.size() != expected.size())
            throw Error(ErrorKind::DataException, "result page " + std::to_string(page_no) +
                                                      " has the columns " + joined(*header) +
                                                      ", but the query job selected " + joined(plan.fields) +
                                                      " (target columns " + joined(expected) + ")");
        if (columns && *columns != mapped)
            throw Error(ErrorKind::DataException, "result page " + std::to_string(page_no) +
                                                      " orders its columns unlike the first page");
        columns = mapped;
        kept.page_nos.push_back(page_no);
        kept.page_files.push_back(plan.page_files[i]);
    }
    plan.page_nos = std::move(kept.page_nos);
    plan.page_files = std::move(kept.page_files);
    return columns ? *columns : expected;
}

// Failures that a second load may not meet: PostgreSQL's transaction rollbacks (serialization, deadlock),
// lack of resources (disk, memory), a lock timeout, a cancel or shutdown, I/O errors and internal errors.
// Everything else (a value, a constraint, a privilege, a missing table or column) would fail the same way.
bool is_transient(int sqlstate) {
    int category = ERRCODE_TO_CATEGORY(sqlstate);
    return category == ERRCODE_TRANSACTION_ROLLBACK || category == ERRCODE_INSUFFICIENT_RESOURCES ||
           category == ERRCODE_OPERATOR_INTERVENTION || category == ERRCODE_SYSTEM_ERROR ||
           category == ERRCODE_INTERNAL_ERROR || category == ERRCODE_CONNECTION_EXCEPTION ||
           sqlstate == ERRCODE_LOCK_NOT_AVAILABLE;
}

// "message. detail (outer context: inner context)": what the user sees in sf_bulk_jobs.error. The context
// lines come innermost first; the page is the outer one, COPY's line, column and value the inner one.
std::string load_error_text(const PgError &e) {
    std::string text = e.what();
    if (!e.detail().empty())
        text += ". " + e.detail();
    std::vector<std::string> lines;
    size_t start = 0;
    const std::string &context = e.context();
    while (start < context.size()) {
        size_t end = context.find('\n', start);
        lines.push_back(context.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    if (!lines.empty()) {
        std::reverse(lines.begin(), lines.end());
        std::string where;
        for (const std::string &line : lines)
            where += (where.empty() ? "" : ": ") + line;
        text += " (" + where + ")";
    }
    return text;
}

}  // namespace

namespace query_store {

QueryWork unfinished_query_work(int limit) {
    std::vector<StoredQuery> queries;
    std::vector<StoredPage> pages;
    ServerOptions servers;
    queries.reserve(static_cast<size_t>(std::max(limit, 0)));
    pages.reserve(static_cast<size_t>(std::max(limit, 0)));
    auto body = [&] {
        if (!job_store::sql_has_query_jobs())
            return;
        Oid types[1] = {INT4OID};
        Datum values[1] = {Int32GetDatum(limit)};
        SPI_execute_with_args(
            "SELECT q.job_id, q.api_version, q.step, coalesce(q.sf_job_id, ''), coalesce(q.sf_state, ''), "
            "q.records_processed, q.attempts, (extract(epoch FROM q.not_before) * 1000)::int8, "
            "coalesce(q.error, ''), q.page_list_url, q.page_list_done, j.operation, j.soql, "
            "j.column_delimiter, j.server_name::text, j.owner::oid "
            "FROM sf_bulk.queries q JOIN sf_bulk.jobs j ON j.id OPERATOR(pg_catalog.=) q.job_id "
            "WHERE j.state OPERATOR(pg_catalog.=) 'running' AND q.step NOT IN ('done', 'failed', 'aborted') "
            "ORDER BY q.job_id LIMIT $1",
            1, types, values, nullptr, true, 0);
        SPITupleTable *table = SPI_tuptable;
        for (uint64 i = 0; i < SPI_processed && i < queries.capacity(); ++i) {
            HeapTuple t = table->vals[i];
            TupleDesc d = table->tupdesc;
            queries.emplace_back();
            StoredQuery &s = queries.back();
            bool is_null;
            s.job_id = int8_column(t, d, 1, 0);
            s.api_version = text_column(t, d, 2);
            s.step = text_column(t, d, 3);
            s.sf_job_id = text_column(t, d, 4);
            s.sf_state = text_column(t, d, 5);
            s.records_processed = int8_column(t, d, 6, 0);
            s.attempts = int4_column(t, d, 7);
            s.not_before_ms = int8_column(t, d, 8, -1);
            s.error = text_column(t, d, 9);
            s.page_list_url = optional_string(nullable_text(t, d, 10));
            s.page_list_done = bool_column(t, d, 11);
            s.operation = text_column(t, d, 12);
            s.soql = text_column(t, d, 13);
            s.column_delimiter = text_column(t, d, 14);
            s.server = text_column(t, d, 15);
            s.owner = DatumGetObjectId(SPI_getbinval(t, d, 16, &is_null));
        }
        // Round-robin over the jobs: each job's n-th page ranks n.
        SPI_execute_with_args(
            "SELECT p.job_id, p.page_no, p.path_or_locator, p.spool_file, p.step, p.records, p.bytes, "
            "p.next_locator, p.attempts, (extract(epoch FROM p.not_before) * 1000)::int8, "
            "coalesce(p.error, ''), q.api_version, coalesce(q.sf_job_id, ''), j.page_size, "
            "j.server_name::text, j.owner::oid "
            "FROM sf_bulk.query_pages p JOIN sf_bulk.queries q ON q.job_id OPERATOR(pg_catalog.=) p.job_id "
            "JOIN sf_bulk.jobs j ON j.id OPERATOR(pg_catalog.=) p.job_id "
            "WHERE j.state OPERATOR(pg_catalog.=) 'running' AND q.step IN ('listing', 'downloading') "
            "AND p.step IN ('pending', 'downloading') "
            "ORDER BY pg_catalog.row_number() OVER (PARTITION BY p.job_id ORDER BY p.page_no), p.job_id "
            "LIMIT $1",
            1, types, values, nullptr, true, 0);
        table = SPI_tuptable;
        for (uint64 i = 0; i < SPI_processed && i < pages.capacity(); ++i) {
            HeapTuple t = table->vals[i];
            TupleDesc d = table->tupdesc;
            pages.emplace_back();
            StoredPage &s = pages.back();
            bool is_null;
            s.job_id = int8_column(t, d, 1, 0);
            s.page_no = int4_column(t, d, 2);
            s.path_or_locator = text_column(t, d, 3);
            s.spool_file = text_column(t, d, 4);
            s.step = text_column(t, d, 5);
            s.records = int8_column(t, d, 6, 0);
            s.bytes = int8_column(t, d, 7, 0);
            s.next_locator = optional_string(nullable_text(t, d, 8));
            s.attempts = int4_column(t, d, 9);
            s.not_before_ms = int8_column(t, d, 10, -1);
            s.error = text_column(t, d, 11);
            s.api_version = text_column(t, d, 12);
            s.sf_job_id = text_column(t, d, 13);
            s.page_size = int8_column(t, d, 14, -1);
            s.server = text_column(t, d, 15);
            s.owner = DatumGetObjectId(SPI_getbinval(t, d, 16, &is_null));
        }
        for (const StoredQuery &s : queries)
            read_server(s.server, servers);
        for (const StoredPage &s : pages)
            read_server(s.server, servers);
    };
    in_transaction("sf_bulk: loading query jobs", body);
    QueryWork work;
    for (const StoredQuery &s : queries)
        work.jobs.push_back(parse_query(s, servers));
    for (const StoredPage &s : pages)
        work.pages.push_back(parse_page(s, servers));
    return work;
}

PagesProgress pages_progress(std::int64_t job_id) {
    int64 known = 0, downloaded = 0;
    bool chain_open = false;
    std::string next_locator;
    std::optional<std::string> failure;
    auto body = [&] {
        Oid types[1] = {INT8OID};
        Datum values[1] = {Int64GetDatum(job_id)};
        if (SPI_execute_with_args(
                "SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE p.step = 'downloaded'), "
                // Locator paging: the highest page, downloaded, names the next one.
                "(SELECT l.next_locator FROM sf_bulk.query_pages l WHERE l.job_id OPERATOR(pg_catalog.=) $1 "
                " AND l.step OPERATOR(pg_catalog.=) 'downloaded' AND l.page_no OPERATOR(pg_catalog.=) "
                " (SELECT pg_catalog.max(m.page_no) FROM sf_bulk.query_pages m "
                "  WHERE m.job_id OPERATOR(pg_catalog.=) $1)), "
                "(SELECT pg_catalog.format('page %s: %s', f.page_no, coalesce(f.error, 'failed')) "
                " FROM sf_bulk.query_pages f WHERE f.job_id OPERATOR(pg_catalog.=) $1 "
                " AND f.step OPERATOR(pg_catalog.=) 'failed' ORDER BY f.page_no LIMIT 1) "
                "FROM sf_bulk.query_pages p WHERE p.job_id OPERATOR(pg_catalog.=) $1",
                1, types, values, nullptr, true, 1) != SPI_OK_SELECT ||
            SPI_processed != 1)
            elog(ERROR, "could not read the result pages' progress");
        HeapTuple t = SPI_tuptable->vals[0];
        TupleDesc d = SPI_tuptable->tupdesc;
        known = int8_column(t, d, 1, 0);
        downloaded = int8_column(t, d, 2, 0);
        const char *locator = nullable_text(t, d, 3);
        chain_open = locator != nullptr && locator[0] != '\0';
        next_locator = chain_open ? locator : "";
        failure = optional_string(nullable_text(t, d, 4));
    };
    in_transaction("sf_bulk: reading result pages", body);
    PagesProgress progress;
    progress.known = static_cast<int>(known);
    progress.downloaded = static_cast<int>(downloaded);
    progress.chain_open = chain_open;
    progress.next_locator = std::move(next_locator);
    progress.page_failure = std::move(failure);
    return progress;
}

void record_job_step(const QueryStepRecord &step, const QueryJobRecord &record,
                     const std::vector<QueryPageSpec> &new_pages) {
    JobStepValues values = job_step_values(step, record, new_pages);
    auto body = [&values] { write_job_step(values); };
    in_transaction("sf_bulk: recording a query step", body);
}

void record_page_step(const QueryStepRecord &step, const QueryPageRecord &record) {
    PageStepValues values{step, record, std::string(to_string(record.step))};
    auto body = [&values] { write_page_step(values); };
    in_transaction("sf_bulk: recording a result page", body);
}

std::optional<LoadFailure> load_pages(const QueryStepRecord &step, const QueryJobRecord &done) {
    static const std::vector<QueryPageSpec> kNoPages;
    JobStepValues values = job_step_values(step, done, kNoPages);
    StoredPlan plan;
    std::vector<std::string> columns;
    std::vector<const char *> column_ptrs, file_ptrs;
    std::optional<LoadFailure> failure;
    int64 job_id = step.job_id;
    try {
        in_transaction("sf_bulk: loading query results", [&] {
            try {
                pg_call([job_id, &plan] { read_plan(job_id, plan); });
                columns = check_headers(job_id, plan);
                for (const std::string &c : columns)
                    column_ptrs.push_back(c.c_str());
                for (const std::string &f : plan.page_files)
                    file_ptrs.push_back(f.c_str());
                LoadView view{job_id,
                              static_cast<Oid>(plan.owner),
                              static_cast<Oid>(plan.target_relid),
                              plan.schema.c_str(),
                              plan.table.c_str(),
                              plan.mode == "replace" ? 'r'
                              : plan.mode == "merge" ? 'm'
                              : plan.mode == "sync"  ? 's'
                                                     : 'a',
                              csv::delimiter_char(csv::parse_delimiter(plan.delimiter)),
                              static_cast<int>(column_ptrs.size()),
                              column_ptrs.data(),
                              static_cast<int>(file_ptrs.size()),
                              plan.page_nos.data(),
                              file_ptrs.data()};
                if (plan.mode != "append" && plan.mode != "replace" && plan.mode != "merge" &&
                    plan.mode != "sync")
                    throw Error(ErrorKind::InvalidParameter,
                                "sf_bulk.jobs.load_mode holds \"" + plan.mode +
                                    "\", which this version of sf_bulk does not know");
                values.rows_loaded = pg_call([&view] { return load_query_pages(&view); });
                pg_call([&values] { write_job_step(values); });
            } catch (const PgError &e) {
                failure = LoadFailure{!is_transient(e.sqlstate()), load_error_text(e)};
                throw;
            } catch (const Error &e) {
                failure = LoadFailure{e.kind() != ErrorKind::Internal, e.what()};
                throw;
            }
        });
    } catch (const std::exception &) {
        if (failure && failure->deterministic)
            return failure;
        throw;
    }
    return std::nullopt;
}

void fail_page(std::int64_t job_id, int page_no, const std::string &message) {
    auto body = [&] {
        Oid types[3] = {INT8OID, INT4OID, TEXTOID};
        Datum values[3] = {Int64GetDatum(job_id), Int32GetDatum(page_no),
                           CStringGetTextDatum(message.c_str())};
        SPI_execute_with_args(
            "UPDATE sf_bulk.query_pages SET step = 'failed', error = $3, updated_at = pg_catalog.now() "
            "WHERE job_id OPERATOR(pg_catalog.=) $1 AND page_no OPERATOR(pg_catalog.=) $2",
            3, types, values, nullptr, false, 0);
    };
    in_transaction("sf_bulk: failing a result page", body);
}

void note_waiting(const QueryPart &part, const std::string &note) {
    auto body = [&] {
        Oid types[3] = {INT8OID, INT4OID, TEXTOID};
        Datum values[3] = {Int64GetDatum(part.job_id), Int32GetDatum(part.page_no),
                           CStringGetTextDatum(note.c_str())};
        if (part.page_no == 0)
            SPI_execute_with_args(
                "UPDATE sf_bulk.queries SET error = $3, updated_at = pg_catalog.now() "
                "WHERE job_id OPERATOR(pg_catalog.=) $1 AND $2 OPERATOR(pg_catalog.=) 0",
                3, types, values, nullptr, false, 0);
        else
            SPI_execute_with_args(
                "UPDATE sf_bulk.query_pages SET error = $3, updated_at = pg_catalog.now() "
                "WHERE job_id OPERATOR(pg_catalog.=) $1 AND page_no OPERATOR(pg_catalog.=) $2",
                3, types, values, nullptr, false, 0);
    };
    in_transaction("sf_bulk: recording a wait", body);
}

}  // namespace query_store

}  // namespace sfb::pg
