// Storing Salesforce's per-row results: result files are parsed as they are read and inserted in batches,
// each batch in a memory context of its own, so memory does not grow with the file. See result_store.h.
#include "core/bulk_api.h"
#include "core/csv.h"
#include "core/ingest_machine.h"
#include "core/row_fingerprint.h"
#include "result_store.h"

#include <nlohmann/json.hpp>

#include "pg_headers.h"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
}

#include "guard.h"

#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace sfb::pg {

namespace {

// One stored result row, as plain values.
struct ResultRow {
    std::string sf_id;
    std::optional<bool> created;
    std::string error, error_code, error_message, error_fields;  // error_fields comma-separated
    std::int64_t row_hash = 0;
    std::string fields_json;
};

// Rows of one result file, sent to SQL in batches: memory is bounded by the batch, not the file.
class ResultBatch {
  public:
    static constexpr size_t kRows = 5000;
    ResultBatch(int64 job_id, int chunk_no, char kind) : job_id_(job_id), chunk_no_(chunk_no), kind_(kind) {}

    void add(ResultRow row) {
        rows_.push_back(std::move(row));
        if (rows_.size() >= kRows)
            flush();
    }

    void flush() {
        if (rows_.empty())
            return;
        pg_call([this] { insert(); });
        rows_.clear();
    }

  private:
    static Datum text_or_null(const std::string &value, bool *is_null) {
        *is_null = value.empty();
        return *is_null ? (Datum)0 : PointerGetDatum(cstring_to_text_with_len(value.data(), value.size()));
    }

    // PostgreSQL work only; reads the rows, creates no C++ object.
    void insert() {
        // The arrays live in a context of their own, deleted after the statement: the transaction that
        // stores a million results must not keep every batch until its commit.
        MemoryContext batch =
            AllocSetContextCreate(CurrentMemoryContext, "sf_bulk results batch", ALLOCSET_DEFAULT_SIZES);
        MemoryContext caller = MemoryContextSwitchTo(batch);
        int n = static_cast<int>(rows_.size());
        constexpr int kText = 6;  // sf_id, sf_error, error_code, error_message, error_fields, fields
        Datum *text[kText];
        bool *text_nulls[kText];
        for (int c = 0; c < kText; ++c) {
            text[c] = static_cast<Datum *>(palloc(sizeof(Datum) * n));
            text_nulls[c] = static_cast<bool *>(palloc(sizeof(bool) * n));
        }
        Datum *created = static_cast<Datum *>(palloc(sizeof(Datum) * n));
        bool *created_nulls = static_cast<bool *>(palloc(sizeof(bool) * n));
        Datum *hashes = static_cast<Datum *>(palloc(sizeof(Datum) * n));
        for (int i = 0; i < n; ++i) {
            const ResultRow &row = rows_[i];
            text[0][i] = text_or_null(row.sf_id, &text_nulls[0][i]);
            text[1][i] = text_or_null(row.error, &text_nulls[1][i]);
            text[2][i] = text_or_null(row.error_code, &text_nulls[2][i]);
            text[3][i] = text_or_null(row.error_message, &text_nulls[3][i]);
            text[4][i] = text_or_null(row.error_fields, &text_nulls[4][i]);
            text[5][i] = text_or_null(row.fields_json, &text_nulls[5][i]);
            created_nulls[i] = !row.created.has_value();
            created[i] = BoolGetDatum(row.created.value_or(false));
            hashes[i] = Int64GetDatum(row.row_hash);
        }
        int dims[1] = {n};
        int lbs[1] = {1};
        Oid types[11] = {INT8OID,      INT4OID,      CHAROID,      TEXTARRAYOID, BOOLARRAYOID, TEXTARRAYOID,
                         TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID};
        auto text_array = [&](int c) {
            return PointerGetDatum(
                construct_md_array(text[c], text_nulls[c], 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
        };
        Datum values[11] = {Int64GetDatum(job_id_),
                            Int32GetDatum(chunk_no_),
                            CharGetDatum(kind_),
                            text_array(0),
                            PointerGetDatum(construct_md_array(created, created_nulls, 1, dims, lbs, BOOLOID,
                                                               1, true, TYPALIGN_CHAR)),
                            text_array(1),
                            text_array(2),
                            text_array(3),
                            text_array(4),
                            PointerGetDatum(construct_md_array(hashes, nullptr, 1, dims, lbs, INT8OID, 8,
                                                               FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
                            text_array(5)};
        if (SPI_execute_with_args(
                "INSERT INTO sf_bulk.results (job_id, chunk_no, kind, sf_id, sf_created, sf_error, "
                "error_code, "
                "error_message, error_fields, row_hash, fields) "
                "SELECT $1, $2, $3, i, c, e, ec, em, pg_catalog.string_to_array(ef, ','), h, f::jsonb "
                "FROM ROWS FROM (pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::bool[]), "
                "pg_catalog.unnest($6::text[]), pg_catalog.unnest($7::text[]), "
                "pg_catalog.unnest($8::text[]), "
                "pg_catalog.unnest($9::text[]), pg_catalog.unnest($10::int8[]), "
                "pg_catalog.unnest($11::text[])) "
                "AS u(i, c, e, ec, em, ef, h, f)",
                11, types, values, nullptr, false, 0) != SPI_OK_INSERT)
            elog(ERROR, "could not store Salesforce results");
        MemoryContextSwitchTo(caller);
        MemoryContextDelete(batch);
    }

    int64 job_id_;
    int chunk_no_;
    char kind_;
    std::vector<ResultRow> rows_;
};

}  // namespace

// Streams one result file into sf_bulk.results. Returns the number of rows.
std::int64_t store_result_file(std::int64_t job_id, int chunk_no, const ChunkResultFile &file,
                               csv::Delimiter delimiter) {
    char kind = file.kind == IngestResult::Successful ? 's' : file.kind == IngestResult::Failed ? 'f' : 'u';
    std::ifstream in(file.path, std::ios::binary);
    if (!in)
        return 0;  // never downloaded (e.g. no job ever existed): nothing to store
    ResultBatch batch(job_id, chunk_no, kind);
    std::vector<std::string> header;
    std::int64_t rows = 0;
    csv::ReaderOptions options;
    options.delimiter = delimiter;
    RowFingerprint fingerprint;
    csv::Reader reader(options, [&](const std::vector<std::string_view> &fields) {
        if (header.empty()) {
            header.assign(fields.begin(), fields.end());
            return;
        }
        if (fields.empty())
            return;
        ResultRow row;
        fingerprint.reset();
        nlohmann::json sent = nlohmann::json::object();
        for (size_t i = 0; i < fields.size() && i < header.size(); ++i) {
            const std::string &name = header[i];
            if (name == "sf__Id") {
                row.sf_id = fields[i];
            } else if (name == "sf__Created") {
                row.created = fields[i] == "true";
            } else if (name == "sf__Error") {
                row.error = fields[i];
            } else {
                // Salesforce echoes the uploaded columns in upload order: the same fingerprint as when sent.
                fingerprint.add(fields[i]);
                sent[name] = std::string(fields[i]);
            }
        }
        if (!row.error.empty()) {
            std::vector<RowError> errors = split_row_errors(row.error);
            if (!errors.empty()) {
                row.error_code = errors.front().code;
                row.error_message = errors.front().message;
                for (const std::string &field : errors.front().fields)
                    row.error_fields += (row.error_fields.empty() ? "" : ",") + field;
            }
        }
        row.row_hash = fingerprint.value();
        row.fields_json = sent.dump();
        batch.add(std::move(row));
        ++rows;
    });
    std::vector<char> buffer(1 << 16);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        if (in.gcount() > 0)
            reader.feed(buffer.data(), static_cast<size_t>(in.gcount()));
    }
    reader.finish();
    batch.flush();
    return rows;
}

// Gives each stored result of a chunk the key of the row it answers: results and sent rows with the same
// fingerprint are paired one to one (identical rows in order), all in SQL. Returns the results left without
// a row (only when the job kept keys).
std::int64_t match_keys(std::int64_t job_id, int chunk_no) {
    Oid types[2] = {INT8OID, INT4OID};
    Datum values[2] = {Int64GetDatum(job_id), Int32GetDatum(chunk_no)};
    if (SPI_execute_with_args("SELECT 1 FROM sf_bulk.sent WHERE job_id OPERATOR(pg_catalog.=) $1 "
                              "AND chunk_no OPERATOR(pg_catalog.=) $2 LIMIT 1",
                              2, types, values, nullptr, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read the rows sent");
    if (SPI_processed == 0)
        return 0;
    if (SPI_execute_with_args(
            "UPDATE sf_bulk.results r SET key = m.key "
            "FROM (SELECT s.key, s.row_hash, pg_catalog.row_number() OVER (PARTITION BY s.row_hash ORDER BY "
            "s.row_no) "
            "AS n FROM sf_bulk.sent s WHERE s.job_id OPERATOR(pg_catalog.=) $1 AND s.chunk_no "
            "OPERATOR(pg_catalog.=) "
            "$2) m, "
            "(SELECT x.ctid AS rid, x.row_hash, pg_catalog.row_number() OVER (PARTITION BY x.row_hash "
            "ORDER BY x.kind, x.sf_id, x.ctid) AS n FROM sf_bulk.results x WHERE x.job_id "
            "OPERATOR(pg_catalog.=) $1 "
            "AND x.chunk_no OPERATOR(pg_catalog.=) $2) rr "
            "WHERE r.ctid OPERATOR(pg_catalog.=) rr.rid AND m.row_hash OPERATOR(pg_catalog.=) rr.row_hash "
            "AND m.n OPERATOR(pg_catalog.=) rr.n",
            2, types, values, nullptr, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not match results to the rows sent");
    int64 matched = static_cast<int64>(SPI_processed);
    // read-write, so that it sees the rows this transaction stored
    if (SPI_execute_with_args("SELECT count(*) FROM sf_bulk.results WHERE job_id OPERATOR(pg_catalog.=) $1 "
                              "AND chunk_no OPERATOR(pg_catalog.=) $2",
                              2, types, values, nullptr, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not count results");
    bool is_null;
    int64 total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null));
    // The keys now live with the results; the rows sent are no longer needed.
    if (SPI_execute_with_args("DELETE FROM sf_bulk.sent WHERE job_id OPERATOR(pg_catalog.=) $1 "
                              "AND chunk_no OPERATOR(pg_catalog.=) $2",
                              2, types, values, nullptr, false, 0) != SPI_OK_DELETE)
        elog(ERROR, "could not clear the rows sent");
    Oid count_types[3] = {INT8OID, INT4OID, INT4OID};
    Datum count_values[3] = {values[0], values[1], Int32GetDatum(static_cast<int32>(total - matched))};
    if (SPI_execute_with_args("UPDATE sf_bulk.chunks SET unmatched_results = $3 WHERE job_id "
                              "OPERATOR(pg_catalog.=) $1 AND chunk_no OPERATOR(pg_catalog.=) $2",
                              3, count_types, count_values, nullptr, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not record unmatched results");
    return total - matched;
}

}  // namespace sfb::pg
