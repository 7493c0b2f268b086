// The worker's SQL. Shape of every method: C++ values prepared before the transaction, a body of PostgreSQL
// calls only (it may raise an ERROR; in_transaction turns that into a C++ exception after rolling back),
// then C++ parsing of what was read, after the transaction. No std::string is built in a frame an ERROR
// could jump over.
#include "job_store.h"

#include "core/error.h"
#include "core/text_util.h"
#include "org_access.h"
#include "result_store.h"

#include "pg_headers.h"

extern "C" {
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "utils/array.h"
}

#include "guard.h"
#include "spi_columns.h"
#include "worker.h"

#include <exception>
#include <utility>

namespace sfb::pg {

namespace {

// The columns of one upload as stored, before parsing.
struct StoredUpload {
    int64 job_id = 0;
    int chunk_no = 0;
    int attempts = 0;
    int64 records_processed = 0, records_failed = 0, not_before_ms = -1;
    std::uint32_t owner = 0;
    std::string spool_file, step, sf_job_id, sf_state, error, replaced;
    std::string operation, object, external_id, assignment_rule_id, line_ending, column_delimiter, server;
};

const char *phase_of(ChunkStep step) {
    switch (step) {
        case ChunkStep::Spooled:
        case ChunkStep::Creating:
        case ChunkStep::Created:
            return "creating Salesforce job";
        case ChunkStep::Uploading:
            return "uploading";
        case ChunkStep::Uploaded:
        case ChunkStep::Closing:
            return "closing upload";
        case ChunkStep::Processing:
            return "processing";
        case ChunkStep::Fetching:
            return "fetching results";
        case ChunkStep::Done:
        case ChunkStep::Failed:
        case ChunkStep::Aborted:
            break;
    }
    return "storing results";
}

// A StepRecord's values as the SQL needs them, built before any transaction starts.
struct StepValues {
    const StepRecord &step;
    std::string step_name;
    std::string replaced;  // text[] literal
    const char *phase;
};

StepValues step_values(const StepRecord &step) {
    std::string replaced = "{";
    for (const std::string &id : step.record.replaced_sf_job_ids)
        replaced += (replaced.size() > 1 ? "," : "") + id;
    replaced += "}";
    return StepValues{step, std::string(to_string(step.record.step)), std::move(replaced),
                      phase_of(step.record.step)};
}

// PostgreSQL calls only.
void write_step(const StepValues &v) {
    const ChunkRecord &record = v.step.record;
    Oid types[12] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, INT8OID,
                     INT8OID, INT4OID, INT8OID, TEXTOID, TEXTOID, INT4OID};
    Datum values[12] = {Int64GetDatum(v.step.upload.job_id),
                        Int32GetDatum(v.step.upload.chunk_no),
                        CStringGetTextDatum(v.step_name.c_str()),
                        CStringGetTextDatum(record.sf_job_id.c_str()),
                        CStringGetTextDatum(record.sf_state.c_str()),
                        Int64GetDatum(record.records_processed),
                        Int64GetDatum(record.records_failed),
                        Int32GetDatum(record.attempts),
                        Int64GetDatum(record.not_before_ms.value_or(0)),
                        CStringGetTextDatum(record.error.c_str()),
                        CStringGetTextDatum(v.replaced.c_str()),
                        Int32GetDatum(v.step.api_calls)};
    char nulls[12] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', record.not_before_ms ? ' ' : 'n',
                      ' ', ' ', ' '};
    if (SPI_execute_with_args(
            "UPDATE sf_bulk.chunks SET step = $3, sf_job_id = nullif($4, ''), sf_state = nullif($5, ''), "
            "records_processed = $6, records_failed = $7, attempts = $8, "
            "not_before = pg_catalog.to_timestamp($9 / 1000.0), error = nullif($10, ''), "
            "replaced_sf_job_ids = $11::text[], updated_at = pg_catalog.now() "
            "WHERE job_id OPERATOR(pg_catalog.=) $1 AND chunk_no OPERATOR(pg_catalog.=) $2",
            12, types, values, nulls, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not record the upload's step");
    Oid job_types[4] = {INT8OID, TEXTOID, INT4OID, TEXTOID};
    Datum job_values[4] = {Int64GetDatum(v.step.upload.job_id), CStringGetTextDatum(v.phase),
                           Int32GetDatum(v.step.api_calls),
                           CStringGetTextDatum(v.step.org_api_usage.c_str())};
    if (SPI_execute_with_args("UPDATE sf_bulk.jobs SET phase = $2, api_calls = api_calls + $3, "
                              "org_api_usage = coalesce(nullif($4, ''), org_api_usage) "
                              "WHERE id OPERATOR(pg_catalog.=) $1",
                              4, job_types, job_values, nullptr, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not record the job's phase");
}

// The stored text of a closed set, parsed; an unknown value names itself and where it was found.
template <typename T>
T known_value(std::optional<T> parsed, const char *column, const std::string &value) {
    if (!parsed)
        throw Error(ErrorKind::InvalidParameter, std::string("sf_bulk.") + column + " holds \"" + value +
                                                     "\", which this version of sf_bulk does not know");
    return *parsed;
}

UploadRow parse_upload(const StoredUpload &s, const std::optional<OptionList> &server_options) {
    UploadRow row;
    row.job_id = s.job_id;
    row.chunk_no = s.chunk_no;
    row.spool_file = s.spool_file;
    row.org = OrgKey{s.server, s.owner};
    row.server = ServerSettings{parse_endpoint_url("login_url", kDefaultLoginUrl), "", kDefaultApiVersion};
    try {
        row.record.step = known_value(parse_chunk_step(s.step), "chunks.step", s.step);
        row.record.sf_job_id = s.sf_job_id;
        row.record.sf_state = s.sf_state;
        row.record.records_processed = s.records_processed;
        row.record.records_failed = s.records_failed;
        row.record.attempts = s.attempts;
        if (s.not_before_ms >= 0)
            row.record.not_before_ms = s.not_before_ms;
        row.record.error = s.error;
        row.record.replaced_sf_job_ids = split_at_commas(s.replaced);
        row.job.object = s.object;
        row.job.operation = known_value(parse_operation(s.operation), "jobs.operation", s.operation);
        row.job.external_id_field_name = s.external_id;
        row.job.assignment_rule_id = s.assignment_rule_id;
        row.job.column_delimiter = csv::parse_delimiter(s.column_delimiter);
        row.job.line_ending = csv::parse_line_ending(s.line_ending);
    } catch (const Error &e) {
        row.unreadable = e.what();
        return row;
    }
    if (!server_options) {
        row.server_problem = "server \"" + s.server + "\" no longer exists";
        return row;
    }
    try {
        row.server = server_settings(*server_options);
    } catch (const Error &e) {
        row.server_problem = e.what();
    }
    return row;
}

}  // namespace

namespace job_store {

bool sql_has_query_jobs() {
    SPI_execute("SELECT pg_catalog.to_regclass('sf_bulk.queries') IS NOT NULL", true, 1);
    bool is_null;
    return SPI_processed == 1 &&
           DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null));
}

bool has_unfinished_work() {
    bool any = false;
    auto body = [&] {
        if (!OidIsValid(get_extension_oid("sf_bulk", true)))
            return;
        SPI_execute("SELECT 1 FROM sf_bulk.jobs WHERE state IN ('queued', 'running') LIMIT 1", true, 1);
        any = SPI_processed > 0;
    };
    in_transaction("sf_bulk: checking for work", body);
    return any;
}

std::optional<std::vector<RunningJob>> claim_jobs() {
    bool present = false;
    std::vector<RunningJob> jobs;
    jobs.reserve(64);
    auto body = [&] {
        present = OidIsValid(get_extension_oid("sf_bulk", true)) && !creating_extension;
        if (!present)
            return;
        SPI_execute(
            // A job queued behind another of the same name (if_running => 'queue') waits for it to end.
            "UPDATE sf_bulk.jobs SET state = 'running', started_at = pg_catalog.now() "
            "WHERE id IN (SELECT j.id FROM sf_bulk.jobs j WHERE j.state OPERATOR(pg_catalog.=) 'queued' "
            "AND (j.after_job IS NULL OR NOT EXISTS (SELECT 1 FROM sf_bulk.jobs p WHERE p.id "
            "OPERATOR(pg_catalog.=) j.after_job AND p.state IN ('queued', 'running'))) "
            "ORDER BY j.id FOR UPDATE SKIP LOCKED)",
            false, 0);
        SPI_execute(
            "SELECT id, abort_requested FROM sf_bulk.jobs WHERE state OPERATOR(pg_catalog.=) 'running'",
            // read-write: a read-only query would not see the jobs the UPDATE above just claimed
            false, 0);
        for (uint64 i = 0; i < SPI_processed; ++i) {
            bool is_null;
            RunningJob job;
            job.id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &is_null));
            job.abort_requested =
                DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &is_null));
            jobs.push_back(job);
        }
    };
    in_transaction("sf_bulk: looking for work", body);
    if (!present)
        return std::nullopt;
    return jobs;
}

std::vector<UploadRow> unfinished_uploads(int limit) {
    std::vector<StoredUpload> stored;
    std::map<std::string, std::optional<OptionList>> servers;
    stored.reserve(static_cast<size_t>(std::max(limit, 0)));
    auto body = [&] {
        Oid types[1] = {INT4OID};
        Datum values[1] = {Int32GetDatum(limit)};
        SPI_execute_with_args(
            "SELECT c.job_id, c.chunk_no, c.spool_file, c.step, coalesce(c.sf_job_id, ''), "
            "coalesce(c.sf_state, ''), c.records_processed, c.records_failed, c.attempts, "
            "(extract(epoch FROM c.not_before) * 1000)::int8, coalesce(c.error, ''), "
            "pg_catalog.array_to_string(c.replaced_sf_job_ids, ','), j.operation, j.object, "
            "coalesce(j.external_id, ''), coalesce(j.assignment_rule_id, ''), j.line_ending, "
            "j.column_delimiter, j.server_name::text, j.owner::oid "
            "FROM sf_bulk.chunks c JOIN sf_bulk.jobs j ON j.id OPERATOR(pg_catalog.=) c.job_id "
            "WHERE j.state OPERATOR(pg_catalog.=) 'running' AND c.step NOT IN ('done', 'failed', 'aborted') "
            "ORDER BY c.job_id, c.chunk_no LIMIT $1",
            1, types, values, nullptr, true, 0);
        SPITupleTable *table = SPI_tuptable;
        for (uint64 i = 0; i < SPI_processed && i < stored.capacity(); ++i) {
            HeapTuple t = table->vals[i];
            TupleDesc d = table->tupdesc;
            stored.emplace_back();
            StoredUpload &s = stored.back();
            bool is_null;
            s.job_id = int8_column(t, d, 1, 0);
            s.chunk_no = DatumGetInt32(SPI_getbinval(t, d, 2, &is_null));
            s.spool_file = text_column(t, d, 3);
            s.step = text_column(t, d, 4);
            s.sf_job_id = text_column(t, d, 5);
            s.sf_state = text_column(t, d, 6);
            s.records_processed = int8_column(t, d, 7, 0);
            s.records_failed = int8_column(t, d, 8, 0);
            s.attempts = DatumGetInt32(SPI_getbinval(t, d, 9, &is_null));
            s.not_before_ms = int8_column(t, d, 10, -1);
            s.error = text_column(t, d, 11);
            s.replaced = text_column(t, d, 12);
            s.operation = text_column(t, d, 13);
            s.object = text_column(t, d, 14);
            s.external_id = text_column(t, d, 15);
            s.assignment_rule_id = text_column(t, d, 16);
            s.line_ending = text_column(t, d, 17);
            s.column_delimiter = text_column(t, d, 18);
            s.server = text_column(t, d, 19);
            s.owner = DatumGetObjectId(SPI_getbinval(t, d, 20, &is_null));
        }
        // The servers' options, read in the same snapshot: api_version and URLs for the machines.
        for (const StoredUpload &s : stored) {
            if (servers.count(s.server))
                continue;
            std::optional<OptionList> &options = servers[s.server];
            ForeignServer *server = GetForeignServerByName(s.server.c_str(), true);
            if (server == nullptr)
                continue;
            options.emplace();
            read_options(server->options, *options);
        }
    };
    in_transaction("sf_bulk: loading uploads", body);
    std::vector<UploadRow> rows;
    rows.reserve(stored.size());
    for (const StoredUpload &s : stored)
        rows.push_back(parse_upload(s, servers[s.server]));
    return rows;
}

OrgCredentials read_credentials(const OrgKey &org) {
    OrgCredentials credentials;
    in_transaction("sf_bulk: reading credentials", [&] { credentials = read_org_credentials(org); });
    return credentials;
}

void record_step(const StepRecord &step) {
    StepValues values = step_values(step);
    auto body = [&values] { write_step(values); };
    in_transaction("sf_bulk: recording a step", body);
}

void store_results(const StepRecord &step, const std::vector<ChunkResultFile> &files,
                   csv::Delimiter delimiter) {
    // One transaction: all result rows of this upload and its final record, or nothing (and a retry).
    in_transaction("sf_bulk: storing results", [&] {
        int64 total = 0, failed = 0;
        for (const ChunkResultFile &file : files) {
            int64 rows = store_result_file(step.upload.job_id, step.upload.chunk_no, file, delimiter);
            total += rows;
            if (file.kind == IngestResult::Failed)
                failed += rows;
            else if (file.kind == IngestResult::Unprocessed)
                total -= rows;  // never attempted: not "processed"
        }
        int64 job_id = step.upload.job_id;
        int chunk_no = step.upload.chunk_no;
        pg_call([job_id, chunk_no] { match_keys(job_id, chunk_no); });
        StepRecord final_step = step;
        // With all three result sets in hand, the counts are the rows stored (after an abort the last poll
        // may be behind); otherwise Salesforce's own counters stand.
        if (files.size() == 3) {
            final_step.record.records_processed = total;
            final_step.record.records_failed = failed;
        }
        StepValues values = step_values(final_step);
        pg_call([&values] { write_step(values); });
    });
}

void store_unsent_rows(const UploadKey &upload, const std::string &spool_file, csv::Delimiter delimiter) {
    in_transaction("sf_bulk: storing rows without a result", [&] {
        int64 job_id = upload.job_id;
        int chunk_no = upload.chunk_no;
        if (pg_call([job_id, chunk_no] { return upload_has_rows("sf_bulk.results", job_id, chunk_no); }))
            return;
        store_result_file(job_id, chunk_no, ChunkResultFile{IngestResult::Unprocessed, spool_file},
                          delimiter);
        pg_call([job_id, chunk_no] { match_keys(job_id, chunk_no); });
    });
}

void fail_upload(const UploadKey &upload, const std::string &message) {
    auto body = [&] {
        Oid types[3] = {INT8OID, INT4OID, TEXTOID};
        Datum values[3] = {Int64GetDatum(upload.job_id), Int32GetDatum(upload.chunk_no),
                           CStringGetTextDatum(message.c_str())};
        SPI_execute_with_args(
            "UPDATE sf_bulk.chunks SET step = 'failed', error = $3, updated_at = pg_catalog.now() "
            "WHERE job_id OPERATOR(pg_catalog.=) $1 AND chunk_no OPERATOR(pg_catalog.=) $2",
            3, types, values, nullptr, false, 0);
    };
    in_transaction("sf_bulk: failing an upload", body);
}

void note_waiting(const std::vector<UploadKey> &uploads, const std::string &note) {
    auto body = [&] {
        for (const UploadKey &upload : uploads) {
            Oid types[3] = {INT8OID, INT4OID, TEXTOID};
            Datum values[3] = {Int64GetDatum(upload.job_id), Int32GetDatum(upload.chunk_no),
                               CStringGetTextDatum(note.c_str())};
            if (SPI_execute_with_args(
                    "UPDATE sf_bulk.chunks SET error = $3, updated_at = pg_catalog.now() "
                    "WHERE job_id OPERATOR(pg_catalog.=) $1 AND chunk_no OPERATOR(pg_catalog.=) $2",
                    3, types, values, nullptr, false, 0) != SPI_OK_UPDATE)
                elog(ERROR, "could not record why an upload waits");
        }
    };
    in_transaction("sf_bulk: recording a wait", body);
}

std::vector<std::int64_t> finish_jobs(const std::vector<std::int64_t> &job_ids) {
    std::vector<std::int64_t> ended(job_ids.size());  // sized before the transaction: no allocation inside
    size_t count = 0;
    auto body = [&] {
        const bool has_query_jobs = sql_has_query_jobs();
        for (int64 id : job_ids) {
            Oid types[1] = {INT8OID};
            Datum values[1] = {Int64GetDatum(id)};
            SPI_execute_with_args(
                "UPDATE sf_bulk.jobs j SET "
                "state = CASE WHEN j.abort_requested AND EXISTS (SELECT 1 FROM sf_bulk.chunks c WHERE "
                "c.job_id OPERATOR(pg_catalog.=) j.id AND c.step OPERATOR(pg_catalog.=) 'aborted') "
                "THEN 'aborted' "
                "WHEN EXISTS (SELECT 1 FROM sf_bulk.chunks c WHERE c.job_id OPERATOR(pg_catalog.=) j.id "
                "AND c.step IN ('failed', 'aborted')) THEN 'failed' ELSE 'completed' END, "
                // Name the upload only when there are several.
                "error = (SELECT pg_catalog.string_agg(pg_catalog.format(CASE WHEN j.uploads > 1 "
                "THEN 'upload %s: %s' ELSE '%2$s' END, c.chunk_no, c.error), '; ' ORDER BY c.chunk_no) FROM "
                "sf_bulk.chunks c WHERE c.job_id OPERATOR(pg_catalog.=) j.id "
                "AND c.step IN ('failed', 'aborted') AND c.error IS NOT NULL), "
                "phase = NULL, finished_at = pg_catalog.now() "
                "WHERE j.id OPERATOR(pg_catalog.=) $1 AND j.state OPERATOR(pg_catalog.=) 'running' "
                // A query job has no uploads: it ends with its sf_bulk.queries row (below).
                "AND j.operation NOT IN ('query', 'queryAll') "
                "AND NOT EXISTS (SELECT 1 FROM sf_bulk.chunks c WHERE c.job_id OPERATOR(pg_catalog.=) j.id "
                "AND c.step NOT IN ('done', 'failed', 'aborted'))",
                1, types, values, nullptr, false, 0);
            uint64 processed = SPI_processed;
            if (!has_query_jobs) {
                if (processed > 0)
                    ended[count++] = id;
                continue;
            }
            // Normally the worker ends a query job in the transaction that records its final step; this
            // catches one whose final step was recorded alone (a task given up on), and a query job whose
            // queries row is missing, which nothing could ever run.
            SPI_execute_with_args(
                "UPDATE sf_bulk.jobs j SET "
                "state = CASE q.step WHEN 'done' THEN 'completed' WHEN 'aborted' THEN 'aborted' "
                "ELSE 'failed' END, "
                "error = CASE WHEN q.job_id IS NULL THEN 'sf_bulk.queries has no row for this query job' "
                "WHEN q.step OPERATOR(pg_catalog.<>) 'done' THEN q.error END, "
                "phase = NULL, finished_at = pg_catalog.now() "
                "FROM sf_bulk.jobs j2 LEFT JOIN sf_bulk.queries q ON q.job_id OPERATOR(pg_catalog.=) j2.id "
                "WHERE j.id OPERATOR(pg_catalog.=) $1 AND j2.id OPERATOR(pg_catalog.=) j.id "
                "AND j.state OPERATOR(pg_catalog.=) 'running' AND j.operation IN ('query', 'queryAll') "
                "AND (q.job_id IS NULL OR q.step IN ('done', 'failed', 'aborted'))",
                1, types, values, nullptr, false, 0);
            if (processed + SPI_processed > 0)
                ended[count++] = id;
        }
    };
    in_transaction("sf_bulk: finishing jobs", body);
    ended.resize(count);
    return ended;
}

void purge_old_jobs(int retention_s) {
    auto body = [&] {
        Oid types[1] = {INT4OID};
        Datum values[1] = {Int32GetDatum(retention_s)};
        if (SPI_execute_with_args(
                "SELECT sf_bulk.delete_jobs(ARRAY(SELECT id FROM sf_bulk.jobs "
                "WHERE state IN ('completed', 'failed', 'aborted') "
                "AND finished_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)))",
                1, types, values, nullptr, false, 0) != SPI_OK_SELECT)
            elog(ERROR, "could not purge old jobs");
    };
    in_transaction("sf_bulk: purging old jobs", body);
}

std::vector<std::int64_t> ended_jobs(const std::vector<std::int64_t> &job_ids) {
    std::vector<std::int64_t> ended(job_ids.size());
    size_t count = 0;
    if (job_ids.empty())
        return ended;
    auto body = [&] {
        Datum *ids = static_cast<Datum *>(palloc(sizeof(Datum) * job_ids.size()));
        for (size_t i = 0; i < job_ids.size(); ++i)
            ids[i] = Int64GetDatum(job_ids[i]);
        Oid types[1] = {INT8ARRAYOID};
        Datum values[1] = {PointerGetDatum(construct_array(ids, static_cast<int>(job_ids.size()), INT8OID, 8,
                                                           FLOAT8PASSBYVAL, TYPALIGN_DOUBLE))};
        if (SPI_execute_with_args("SELECT id FROM sf_bulk.jobs WHERE id OPERATOR(pg_catalog.=) ANY ($1) "
                                  "AND state IN ('completed', 'failed', 'aborted')",
                                  1, types, values, nullptr, true, 0) != SPI_OK_SELECT)
            elog(ERROR, "could not read sf_bulk jobs");
        for (uint64 i = 0; i < SPI_processed && count < ended.size(); ++i) {
            bool is_null;
            ended[count++] =
                DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &is_null));
        }
    };
    in_transaction("sf_bulk: reading ended jobs", body);
    ended.resize(count);
    return ended;
}

}  // namespace job_store

}  // namespace sfb::pg
