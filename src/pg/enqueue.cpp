// sf_bulk_insert / update / upsert / delete / hard_delete: validate, run the caller's query in the
// caller's snapshot and privileges, stream its rows into spool files of Salesforce CSV, and record the
// job for the worker, which the commit wakes. Nothing here talks to Salesforce.
#include "core/csv.h"
#include "core/error.h"
#include "core/ingest_spec.h"
#include "core/row_fingerprint.h"
#include "core/sf_values.h"
#include "core/spool_names.h"

#include "pg_headers.h"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "nodes/parsenodes.h"
#include "tcop/pquery.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/varlena.h"
#include "utils/plancache.h"
#include "utils/syscache.h"
}

#include "compat.h"
#include "enqueue.h"
#include "guard.h"
#include "module.h"
#include "org_access.h"
#include "owner.h"
#include "preflight.h"
#include "shmem.h"
#include "spool.h"
#include "value_format.h"

#include <fcntl.h>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sfb::pg {

namespace {

// Calls whose query is being spooled by this backend right now. A query that itself starts a job would make
// that job part of a statement sf_bulk is reading (and of its rollback): refused.
int spooling_depth = 0;

}  // namespace

const char *text_arg(FunctionCallInfo fcinfo, int n) {
    return PG_ARGISNULL(n) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

const char *name_arg(FunctionCallInfo fcinfo, int n) {
    return PG_ARGISNULL(n) ? nullptr : pstrdup(NameStr(*PG_GETARG_NAME(n)));
}

void refuse_while_spooling(const char *function) {
    if (spooling_depth > 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("%s cannot be called from the query of another sf_bulk call", function),
                        errhint("Start the jobs one after the other.")));
}

void check_if_running(const char *function, const char *if_running) {
    if (strcmp(if_running, "queue") != 0 && strcmp(if_running, "skip") != 0 &&
        strcmp(if_running, "error") != 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("%s: invalid value for if_running: \"%s\"", function, if_running),
                        errhint("Use 'queue' (start after the running job of the same name), 'skip' (start "
                                "nothing) or 'error'.")));
}

namespace {

// For a named push: the caller's unfinished job of that name, 0 if none. Serialised per name with an
// advisory lock, so two sessions starting the same push at once cannot both miss each other.
int64 unfinished_job_named(const char *job_name) {
    Oid types[1] = {TEXTOID};
    Datum values[1] = {CStringGetTextDatum(job_name)};
    if (SPI_execute_with_args(
            "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('sf_bulk:' || $1))", 1, types,
            values, nullptr, false, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not lock the sf_bulk job name");
    // Read as the caller: row-level security limits this to the caller's own jobs.
    if (SPI_execute_with_args("SELECT id FROM sf_bulk.jobs WHERE name OPERATOR(pg_catalog.=) $1 "
                              "AND state IN ('queued', 'running') ORDER BY id DESC LIMIT 1",
                              1, types, values, nullptr, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not look up sf_bulk jobs by name");
    if (SPI_processed == 0)
        return 0;
    bool is_null;
    return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null));
}

}  // namespace

bool follow_named_job(const char *function, const char *job_name, const char *if_running, int64 *after_job) {
    *after_job = 0;
    if (job_name == nullptr)
        return true;
    *after_job = unfinished_job_named(job_name);
    if (*after_job > 0 && strcmp(if_running, "skip") == 0) {
        ereport(NOTICE, (errmsg("%s: job " INT64_FORMAT " named \"%s\" is still unfinished; nothing started",
                                function, *after_job, job_name)));
        return false;
    }
    if (*after_job > 0 && strcmp(if_running, "error") == 0)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE),
                        errmsg("%s: job " INT64_FORMAT " named \"%s\" is still unfinished", function,
                               *after_job, job_name),
                        errhint("Wait for it (sf_bulk_wait), or use if_running => 'queue' or 'skip'.")));
    return true;
}

namespace {

// The call's arguments as plain C strings (palloc'd); NULL where the caller passed NULL.
struct CallArgs {
    Operation operation;
    const char *function;
    const char *object;
    const char *query;
    const char *server;
    const char *external_id;
    const char *nulls;
    int32 max_upload_mb;
    const char *assignment_rule_id;
    const char *line_ending;
    const char *column_delimiter;
    const char *key;         // comma-separated query columns kept in Postgres, or NULL
    const char *job_name;    // names a recurring push, or NULL
    const char *if_running;  // what to do while a job of that name is unfinished
    bool validate;           // check the columns against Salesforce's describe first
};

void require_arg(const CallArgs &args, const char *value, const char *name) {
    if (value == nullptr)
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("%s: %s must not be NULL", args.function, name)));
}

// Argument positions follow the SQL signatures in extension/sf_bulk--1.0.sql.
CallArgs read_args(FunctionCallInfo fcinfo, Operation operation, const char *function) {
    CallArgs args{};
    args.operation = operation;
    args.function = function;
    args.object = text_arg(fcinfo, 0);
    args.query = text_arg(fcinfo, 1);
    int next = 2;
    if (operation == Operation::Upsert)
        args.external_id = text_arg(fcinfo, next++);
    args.server = name_arg(fcinfo, next++);
    bool deletes = operation == Operation::Delete || operation == Operation::HardDelete;
    args.nulls = deletes ? "keep" : text_arg(fcinfo, next++);
    if (PG_ARGISNULL(next))
        require_arg(args, nullptr, "max_upload_mb");
    args.max_upload_mb = PG_GETARG_INT32(next++);
    args.assignment_rule_id = deletes ? nullptr : text_arg(fcinfo, next++);
    args.line_ending = text_arg(fcinfo, next++);
    args.column_delimiter = text_arg(fcinfo, next++);
    args.key = text_arg(fcinfo, next++);
    args.job_name = text_arg(fcinfo, next++);
    args.if_running = text_arg(fcinfo, next++);
    // validate arrived with SQL 1.2: until ALTER EXTENSION UPDATE, the 1.1 functions call us without it and
    // keep 1.1's behaviour (no pre-flight).
    args.validate = false;
    if (fcinfo->nargs > next) {
        if (PG_ARGISNULL(next))
            require_arg(args, nullptr, "validate");
        args.validate = PG_GETARG_BOOL(next++);
    }

    require_arg(args, args.object, "object");
    require_arg(args, args.query, "query");
    if (operation == Operation::Upsert)
        require_arg(args, args.external_id, "external_id");
    require_arg(args, args.nulls, "nulls");
    require_arg(args, args.line_ending, "line_ending");
    require_arg(args, args.column_delimiter, "column_delimiter");
    require_arg(args, args.if_running, "if_running");
    return args;
}

// Prepares the caller's query and checks that it is one read-only statement that returns rows.
SPIPlanPtr prepare_query(const CallArgs &args) {
    SPIPlanPtr plan = SPI_prepare(args.query, 0, nullptr);
    if (plan == nullptr)
        ereport(ERROR,
                (errcode(ERRCODE_SYNTAX_ERROR), errmsg("%s: could not prepare the query: %s", args.function,
                                                       SPI_result_code_string(SPI_result))));
    List *sources = SPI_plan_get_plan_sources(plan);
    bool read_only_select = list_length(sources) == 1;
    if (read_only_select) {
        CachedPlanSource *source = static_cast<CachedPlanSource *>(linitial(sources));
        ListCell *cell;
        foreach (cell, source->query_list) {
            Query *query = lfirst_node(Query, cell);
            if (query->commandType != CMD_SELECT || query->hasModifyingCTE || query->rowMarks != NIL ||
                query->utilityStmt != nullptr)
                read_only_select = false;
        }
    }
    if (!read_only_select || !SPI_is_cursor_plan(plan))
        ereport(ERROR,
                (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                 errmsg("%s: the query must be a single read-only SELECT that returns rows", args.function),
                 errdetail("Data-modifying statements, FOR UPDATE/SHARE and several statements are not "
                           "allowed: the rows are read, never changed.")));
    return plan;
}

// Column names of the query's result, palloc'd.
char **column_names(TupleDesc desc) {
    auto **names = static_cast<char **>(palloc0(sizeof(char *) * Max(desc->natts, 1)));
    for (int i = 0; i < desc->natts; ++i)
        names[i] = NameStr(TupleDescAttr(desc, i)->attname);
    return names;
}

std::unique_ptr<csv::ByteSink> open_spool_file(const std::string &path) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    // strerror unqualified: port.h makes it pg_strerror, and core/csv.h has included <cstring> before
    // postgres.h, so no std::pg_strerror is declared here.
    if (fd < 0)
        throw Error(ErrorKind::Internal, "could not create spool file \"" + path + "\": " + strerror(errno));
    track_spool_file(path);
    // FdFileSink::close() fsyncs: the job row that names the file commits only after its data is durable.
    return std::make_unique<csv::FdFileSink>(fd, path);
}

// The text Salesforce gets for one value. The view points into `field`, `number` or `civil_text` (at least
// kCivilTextMax bytes).
std::string_view render(const FieldValue &field, const IngestSpec &spec, const char *column,
                        std::string &number, char *civil_text) {
    switch (field.kind) {
        case FieldKind::Null:
            return spec.nulls_clear ? kSalesforceNull : "";
        case FieldKind::Text:
            return std::string_view(field.text, field.length);
        case FieldKind::Number: {
            // Most numbers are already plain (integers, numeric): send them as they are, without a copy.
            std::string_view text(field.text, field.length);
            if (is_plain_decimal(text))
                return text;
            number = plain_decimal(text, std::string("a value of column \"") + column + "\"");
            return number;
        }
        case FieldKind::Date:
            return std::string_view(civil_text, write_date(civil_text, field.civil));
        case FieldKind::DateTime:
            return std::string_view(civil_text, write_utc_datetime(civil_text, field.civil));
        case FieldKind::Time:
            return std::string_view(civil_text, write_utc_time(civil_text, field.civil));
    }
    return "";
}

// A composite key's text as PostgreSQL's record output writes it, so `(t.a, t.b)::text = key` joins.
void append_record_field(std::string &out, const FieldValue &field) {
    if (field.kind == FieldKind::Null)
        return;
    std::string_view value(field.text, field.length);
    bool quote = value.empty() || value.find_first_of("(),\"\\ \t\n\r\v\f") != std::string_view::npos;
    if (!quote) {
        out.append(value);
        return;
    }
    out += '"';
    for (char c : value) {
        if (c == '"' || c == '\\')
            out += c;
        out += c;
    }
    out += '"';
}

// Source keys and fingerprints of the rows sent, written to sf_bulk.sent in batches as the rows spool.
class SentRows {
  public:
    static constexpr size_t kBatch = 5000;
    explicit SentRows(int64 job_id) : job_id_(job_id) {}

    void add(int chunk_no, int64 row_no, int64 hash, std::optional<std::string> key) {
        chunk_.push_back(chunk_no);
        row_.push_back(row_no);
        hash_.push_back(hash);
        key_null_.push_back(!key.has_value());
        key_.push_back(key ? std::move(*key) : std::string());
    }

    // The caller flushes every kBatch rows, between fetches: the INSERT must not run inside the executor
    // that is producing the rows.
    void flush() {
        if (chunk_.empty())
            return;
        pg_call([this] { insert(); });
        chunk_.clear();
        row_.clear();
        hash_.clear();
        key_.clear();
        key_null_.clear();
    }

  private:
    // PostgreSQL work only: reads the vectors, creates no C++ object.
    void insert() {
        MemoryContext batch =
            AllocSetContextCreate(CurrentMemoryContext, "sf_bulk sent rows", ALLOCSET_SMALL_SIZES);
        MemoryContext caller = MemoryContextSwitchTo(batch);
        int n = static_cast<int>(chunk_.size());
        Datum *chunks = static_cast<Datum *>(palloc(sizeof(Datum) * n));
        Datum *rows = static_cast<Datum *>(palloc(sizeof(Datum) * n));
        Datum *hashes = static_cast<Datum *>(palloc(sizeof(Datum) * n));
        Datum *keys = static_cast<Datum *>(palloc(sizeof(Datum) * n));
        bool *key_nulls = static_cast<bool *>(palloc(sizeof(bool) * n));
        for (int i = 0; i < n; ++i) {
            chunks[i] = Int32GetDatum(chunk_[i]);
            rows[i] = Int64GetDatum(row_[i]);
            hashes[i] = Int64GetDatum(hash_[i]);
            key_nulls[i] = key_null_[i];
            keys[i] = key_nulls[i]
                          ? (Datum)0
                          : PointerGetDatum(cstring_to_text_with_len(key_[i].data(), key_[i].size()));
        }
        int dims[1] = {n};
        int lbs[1] = {1};
        Oid types[5] = {INT8OID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID};
        Datum values[5] = {Int64GetDatum(job_id_),
                           PointerGetDatum(construct_md_array(chunks, nullptr, 1, dims, lbs, INT4OID, 4, true,
                                                              TYPALIGN_INT)),
                           PointerGetDatum(construct_md_array(rows, nullptr, 1, dims, lbs, INT8OID, 8,
                                                              FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
                           PointerGetDatum(construct_md_array(hashes, nullptr, 1, dims, lbs, INT8OID, 8,
                                                              FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
                           PointerGetDatum(construct_md_array(keys, key_nulls, 1, dims, lbs, TEXTOID, -1,
                                                              false, TYPALIGN_INT))};
        as_extension_owner([&] {
            if (SPI_execute_with_args(
                    "INSERT INTO sf_bulk.sent (job_id, chunk_no, row_no, row_hash, key) "
                    "SELECT $1, c, r, h, k FROM ROWS FROM (pg_catalog.unnest($2::int4[]), "
                    "pg_catalog.unnest($3::int8[]), "
                    "pg_catalog.unnest($4::int8[]), pg_catalog.unnest($5::text[])) AS u(c, r, h, k)",
                    5, types, values, nullptr, false, 0) != SPI_OK_INSERT)
                elog(ERROR, "could not record the keys of the rows sent");
        });
        MemoryContextSwitchTo(caller);
        MemoryContextDelete(batch);
    }

    int64 job_id_;
    std::vector<int> chunk_;
    std::vector<int64> row_;
    std::vector<int64> hash_;
    std::vector<std::string> key_;
    std::vector<bool> key_null_;
};

struct SpoolOutcome {
    std::vector<std::string> paths;
    std::vector<csv::SpoolFileInfo> files;
    std::uint64_t rows = 0;
};

// The C++ half of spooling: turns one formatted row into CSV in the spool files and, for jobs with keys,
// records its key and fingerprint. Throws like SpoolWriter; the executor reaches it only through
// add_row_catching, which keeps the exception for spool_rows to rethrow.
class RowSpooler {
  public:
    RowSpooler(const IngestSpec &spec, int64 job_id, const bool *is_key, bool has_keys, int ncols,
               char **names, SpoolOutcome &outcome)
        : spec_(spec),
          is_key_(is_key),
          has_keys_(has_keys),
          ncols_(ncols),
          names_(names),
          prefix_(job_file_prefix(job_id)),
          writer_(spec.format, spec.columns, spec.max_upload_bytes,
                  [this, &outcome](std::size_t index) {
                      std::string path = upload_file_name(prefix_, static_cast<int>(index) + 1);
                      outcome.paths.push_back(path);
                      return open_spool_file(path);
                  }),
          sent_(job_id) {
        for (int c = 0; c < ncols; ++c)
            key_count_ += is_key[c] ? 1 : 0;
    }

    void add(const FieldValue *row) {
        fingerprint_.reset();
        key_.clear();
        bool key_null = true;
        for (int c = 0; c < ncols_; ++c) {
            if (is_key_[c]) {
                if (key_count_ > 1) {
                    key_ += key_.empty() ? "(" : ",";
                    append_record_field(key_, row[c]);
                    key_null = false;
                } else if (row[c].kind != FieldKind::Null) {
                    key_.assign(row[c].text, row[c].length);
                    key_null = false;
                }
                continue;
            }
            std::string_view value = render(row[c], spec_, names_[c], number_, civil_text_);
            writer_.add_field(value);
            if (has_keys_)  // fingerprints only serve key recovery
                fingerprint_.add(value);
        }
        writer_.finish_row();
        ++row_no_;
        if (has_keys_) {
            if (key_count_ > 1)
                key_ += ")";
            sent_.add(static_cast<int>(writer_.files().size()), row_no_, fingerprint_.value(),
                      key_null ? std::nullopt : std::optional<std::string>(key_));
        }
    }

    // SPI work: call between fetches, never while the executor is inside the caller's query.
    void flush_sent() { sent_.flush(); }

    void finish(SpoolOutcome &outcome) {
        writer_.finish();
        sent_.flush();
        outcome.files = writer_.files();
        outcome.rows = writer_.total_rows();
    }

    // What add() threw inside the executor, rethrown by spool_rows once the executor has returned.
    std::exception_ptr failure;

  private:
    const IngestSpec &spec_;
    const bool *is_key_;
    bool has_keys_;
    int ncols_;
    char **names_;
    int key_count_ = 0;
    std::string prefix_;
    csv::SpoolWriter writer_;
    SentRows sent_;
    RowFingerprint fingerprint_;
    std::string number_, key_;
    char civil_text_[kCivilTextMax];
    int64 row_no_ = 0;
};

// Called from the executor (C): must not throw. A C++ exception is kept and stops the executor.
bool add_row_catching(RowSpooler *spooler, const FieldValue *row) noexcept {
    try {
        spooler->add(row);
        return true;
    } catch (...) {
        spooler->failure = std::current_exception();
        return false;
    }
}

// Receives the query's rows straight from the executor, as COPY TO does: no copy of each row into an
// SPI tuptable (spi_printtup → heap_form_tuple) and no re-deforming of that copy; the values are read from
// the slot. Per-row memory (output-function texts, detoasted values) lives in a context reset before every
// row, so memory stays flat however many rows there are.
struct SpoolReceiver {
    DestReceiver pub;  // first: the executor sees only this
    const ColumnFormat *formats;
    int ncols;
    FieldValue *fields;  // the current row, allocated once
    MemoryContext row_context;
    RowSpooler *spooler;
};

bool spool_receive_slot(TupleTableSlot *slot, DestReceiver *self) {
    auto *receiver = reinterpret_cast<SpoolReceiver *>(self);
    // PostgreSQL part. An ERROR here unwinds through the executor to the pg_call in spool_rows; this frame
    // owns no C++ object.
    MemoryContextReset(receiver->row_context);
    MemoryContext caller = MemoryContextSwitchTo(receiver->row_context);
    slot_getallattrs(slot);
    format_row(receiver->formats, receiver->ncols, slot->tts_values, slot->tts_isnull, receiver->fields);
    MemoryContextSwitchTo(caller);
    // C++ part: never throws; false makes the executor stop, and spool_rows rethrows what was caught.
    return add_row_catching(receiver->spooler, receiver->fields);
}

void spool_receiver_startup(DestReceiver *self, int, TupleDesc typeinfo) {
    // The formats were planned from the portal's descriptor; the rows must have its shape.
    if (typeinfo->natts != reinterpret_cast<SpoolReceiver *>(self)->ncols)
        elog(ERROR, "sf_bulk: the query's row type changed while it ran");
}

void spool_receiver_nothing(DestReceiver *) {}

// Rows per PortalRunFetch. Between fetches, outside the executor, interrupts are checked and the keys of the
// rows just sent go to sf_bulk.sent (in batches of SentRows::kBatch, as they always have).
constexpr long kFetchBatch = static_cast<long>(SentRows::kBatch);

// Streams the cursor's rows into spool files. Key columns (is_key) are not sent: their values and the
// fingerprint of what was sent go to sf_bulk.sent. Memory: one row, the writer's buffers and one batch of
// keys.
SpoolOutcome spool_rows(Portal portal, const IngestSpec &spec, int64 job_id, const bool *is_key,
                        bool has_keys) {
    TupleDesc desc = portal->tupDesc;
    int ncols = desc->natts;
    SpoolReceiver *receiver = pg_call([desc, is_key, ncols] {
        auto *r = static_cast<SpoolReceiver *>(palloc0(sizeof(SpoolReceiver)));
        r->pub.receiveSlot = spool_receive_slot;
        r->pub.rStartup = spool_receiver_startup;
        r->pub.rShutdown = spool_receiver_nothing;
        r->pub.rDestroy = spool_receiver_nothing;
        r->pub.mydest = DestNone;
        r->formats = plan_column_formats(desc, is_key);
        r->ncols = ncols;
        r->fields = static_cast<FieldValue *>(palloc0(sizeof(FieldValue) * Max(ncols, 1)));
        r->row_context =
            AllocSetContextCreate(CurrentMemoryContext, "sf_bulk spool row", ALLOCSET_DEFAULT_SIZES);
        return r;
    });
    char **names = pg_call([desc] { return column_names(desc); });
    SpoolOutcome outcome;
    RowSpooler spooler(spec, job_id, is_key, has_keys, ncols, names, outcome);
    receiver->spooler = &spooler;

    for (;;) {
        // PortalRunFetch rather than SPI_cursor_fetch: the same cursor, snapshot and read-only portal, but
        // the rows come to our receiver instead of being copied into a tuptable.
        uint64 fetched = pg_call([portal, receiver] {
            CHECK_FOR_INTERRUPTS();
            return PortalRunFetch(portal, FETCH_FORWARD, kFetchBatch, &receiver->pub);
        });
        if (spooler.failure)
            std::rethrow_exception(spooler.failure);
        spooler.flush_sent();
        if (fetched < static_cast<uint64>(kFetchBatch))
            break;
    }
    spooler.finish(outcome);
    pg_call([receiver] { MemoryContextDelete(receiver->row_context); });
    return outcome;
}

Datum text_datum(const char *value) {
    return value ? PointerGetDatum(cstring_to_text(value)) : (Datum)0;
}

// Inserts the job row as the extension's owner (callers have no write privilege on our tables).
int64 insert_job(const CallArgs &args, ForeignServer *server, ArrayType *columns, ArrayType *key_columns,
                 int64 max_upload_bytes, int64 after_job) {
    const char *sql =
        "INSERT INTO sf_bulk.jobs (owner, server_name, operation, object, external_id, assignment_rule_id, "
        "nulls, "
        "line_ending, column_delimiter, max_upload_bytes, columns, key_columns, name, after_job, phase) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'spooling') RETURNING id";
    Oid types[14] = {REGROLEOID, NAMEOID, TEXTOID, TEXTOID,      TEXTOID,      TEXTOID, TEXTOID,
                     TEXTOID,    TEXTOID, INT8OID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID, INT8OID};
    std::string_view operation = to_string(args.operation);
    Datum values[14] = {ObjectIdGetDatum(GetUserId()),
                        DirectFunctionCall1(namein, CStringGetDatum(server->servername)),
                        PointerGetDatum(cstring_to_text_with_len(operation.data(), operation.size())),
                        text_datum(args.object),
                        text_datum(args.external_id),
                        text_datum(args.assignment_rule_id),
                        text_datum(args.nulls),
                        text_datum(args.line_ending),
                        text_datum(args.column_delimiter),
                        Int64GetDatum(max_upload_bytes),
                        PointerGetDatum(columns),
                        PointerGetDatum(key_columns),
                        text_datum(args.job_name),
                        Int64GetDatum(after_job)};
    char nulls[14] = {' ',
                      ' ',
                      ' ',
                      ' ',
                      args.external_id ? ' ' : 'n',
                      args.assignment_rule_id ? ' ' : 'n',
                      ' ',
                      ' ',
                      ' ',
                      ' ',
                      ' ',
                      ' ',
                      args.job_name ? ' ' : 'n',
                      after_job > 0 ? ' ' : 'n'};
    int64 id = 0;
    as_extension_owner([&] {
        if (SPI_execute_with_args(sql, 14, types, values, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
            elog(ERROR, "could not record the sf_bulk job");
        bool is_null;
        id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null));
    });
    return id;
}

ArrayType *text_array(char **items, int count) {
    Datum *datums = static_cast<Datum *>(palloc(sizeof(Datum) * Max(count, 1)));
    for (int i = 0; i < count; ++i)
        datums[i] = CStringGetTextDatum(items[i]);
    return construct_array(datums, count, TEXTOID, -1, false, TYPALIGN_INT);
}

// Records the chunks and the job's totals; a job without rows is complete at once.
void finish_job(int64 job_id, const SpoolOutcome &outcome) {
    int count = static_cast<int>(outcome.files.size());
    auto *numbers = static_cast<Datum *>(palloc(sizeof(Datum) * Max(count, 1)));
    auto *paths = static_cast<Datum *>(palloc(sizeof(Datum) * Max(count, 1)));
    auto *rows = static_cast<Datum *>(palloc(sizeof(Datum) * Max(count, 1)));
    auto *bytes = static_cast<Datum *>(palloc(sizeof(Datum) * Max(count, 1)));
    int64 total_bytes = 0;
    for (int i = 0; i < count; ++i) {
        numbers[i] = Int32GetDatum(i + 1);
        paths[i] = CStringGetTextDatum(outcome.paths[i].c_str());
        rows[i] = Int64GetDatum(static_cast<int64>(outcome.files[i].rows));
        bytes[i] = Int64GetDatum(static_cast<int64>(outcome.files[i].bytes));
        total_bytes += static_cast<int64>(outcome.files[i].bytes);
    }
    const char *chunks_sql =
        "INSERT INTO sf_bulk.chunks (job_id, chunk_no, spool_file, rows, bytes) "
        "SELECT $1, n, f, r, b FROM ROWS FROM (pg_catalog.unnest($2::int4[]), pg_catalog.unnest($3::text[]), "
        "pg_catalog.unnest($4::int8[]), pg_catalog.unnest($5::int8[])) AS u(n, f, r, b)";
    Oid chunk_types[5] = {INT8OID, INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
    Datum chunk_values[5] = {
        Int64GetDatum(job_id),
        PointerGetDatum(construct_array(numbers, count, INT4OID, 4, true, TYPALIGN_INT)),
        PointerGetDatum(construct_array(paths, count, TEXTOID, -1, false, TYPALIGN_INT)),
        PointerGetDatum(construct_array(rows, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
        PointerGetDatum(construct_array(bytes, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE))};
    const char *job_sql =
        "UPDATE sf_bulk.jobs SET rows_spooled = $2, bytes_spooled = $3, uploads = $4, phase = NULL, "
        "state = CASE WHEN $2 OPERATOR(pg_catalog.=) 0 THEN 'completed' ELSE 'queued' END, "
        "finished_at = CASE WHEN $2 OPERATOR(pg_catalog.=) 0 THEN pg_catalog.now() END "
        "WHERE id OPERATOR(pg_catalog.=) $1";
    Oid job_types[4] = {INT8OID, INT8OID, INT8OID, INT4OID};
    Datum job_values[4] = {Int64GetDatum(job_id), Int64GetDatum(static_cast<int64>(outcome.rows)),
                           Int64GetDatum(total_bytes), Int32GetDatum(count)};
    as_extension_owner([&] {
        if (count > 0 && SPI_execute_with_args(chunks_sql, 5, chunk_types, chunk_values, nullptr, false, 0) !=
                             SPI_OK_INSERT)
            elog(ERROR, "could not record the sf_bulk job's uploads");
        if (SPI_execute_with_args(job_sql, 4, job_types, job_values, nullptr, false, 0) != SPI_OK_UPDATE)
            elog(ERROR, "could not update the sf_bulk job");
    });
}

// The `key` option: query columns kept in Postgres. Returns a flag per column (palloc'd).
bool *key_flags(const CallArgs &args, TupleDesc desc, char **names, int *key_count) {
    bool *flags = static_cast<bool *>(palloc0(sizeof(bool) * Max(desc->natts, 1)));
    *key_count = 0;
    if (args.key == nullptr)
        return flags;
    char *list = pstrdup(args.key);
    List *items = NIL;
    if (!SplitIdentifierString(list, ',', &items) || items == NIL)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("%s: invalid value for key: \"%s\"", args.function, args.key),
                 errhint("Name one or more columns of the query, separated by commas, e.g. key => 'id'.")));
    ListCell *cell;
    foreach (cell, items) {
        const char *wanted = static_cast<const char *>(lfirst(cell));
        int found = -1;
        for (int i = 0; i < desc->natts; ++i)
            if (strcmp(names[i], wanted) == 0)
                found = i;
        if (found < 0)
            ereport(ERROR,
                    (errcode(ERRCODE_UNDEFINED_COLUMN),
                     errmsg("%s: key column \"%s\" is not a column of the query", args.function, wanted)));
        if (flags[found])
            ereport(ERROR, (errcode(ERRCODE_DUPLICATE_COLUMN),
                            errmsg("%s: key column \"%s\" is named twice", args.function, wanted)));
        flags[found] = true;
        ++*key_count;
    }
    return flags;
}

struct SpoolingScope {
    SpoolingScope() { ++spooling_depth; }
    ~SpoolingScope() { --spooling_depth; }
    SpoolingScope(const SpoolingScope &) = delete;
    SpoolingScope &operator=(const SpoolingScope &) = delete;
};

Datum enqueue(FunctionCallInfo fcinfo, Operation operation, const char *function) {
    // PostgreSQL-only work first, while no C++ object exists in this frame.
    refuse_while_spooling(function);
    require_preloaded(function);
    CallArgs args = read_args(fcinfo, operation, function);
    check_if_running(function, args.if_running);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    ForeignServer *server = resolve_server(args.function, args.server);
    int64 after_job = 0;
    if (!follow_named_job(function, args.job_name, args.if_running, &after_job)) {
        SPI_finish();
        PG_RETURN_NULL();
    }
    SPIPlanPtr plan = prepare_query(args);
    // read_only: the caller's snapshot, and no data-modifying function can sneak in.
    Portal portal = SPI_cursor_open(nullptr, plan, nullptr, nullptr, true);
    TupleDesc desc = portal->tupDesc;
    char **names = column_names(desc);
    int key_count = 0;
    bool *is_key = key_flags(args, desc, names, &key_count);
    int sent_count = 0;
    char **sent_names = static_cast<char **>(palloc0(sizeof(char *) * Max(desc->natts, 1)));
    char **key_names = static_cast<char **>(palloc0(sizeof(char *) * Max(key_count, 1)));
    for (int i = 0, k = 0; i < desc->natts; ++i) {
        if (is_key[i])
            key_names[k++] = names[i];
        else
            sent_names[sent_count++] = names[i];
    }
    ArrayType *columns_array = text_array(sent_names, sent_count);
    ArrayType *key_array = text_array(key_names, key_count);

    IngestOptions options;
    options.operation = operation;
    options.object = args.object;
    if (args.external_id)
        options.external_id = std::string(args.external_id);
    options.nulls = args.nulls;
    options.max_upload_mb = args.max_upload_mb;
    if (args.assignment_rule_id)
        options.assignment_rule_id = std::string(args.assignment_rule_id);
    options.line_ending = args.line_ending;
    options.column_delimiter = args.column_delimiter;
    std::vector<std::string> columns(sent_names, sent_names + sent_count);
    IngestSpec spec = make_ingest_spec(options, columns);
    if (args.validate)
        preflight_ingest_call(function, args.server, operation, spec.object, options.external_id, desc,
                              is_key);

    int64 job_id = pg_call([&] {
        return insert_job(args, server, columns_array, key_array, static_cast<int64>(spec.max_upload_bytes),
                          after_job);
    });
    SpoolOutcome outcome = [&] {
        SpoolingScope scope;
        return spool_rows(portal, spec, job_id, is_key, key_count > 0);
    }();
    if (outcome.rows == 0) {
        for (const std::string &path : outcome.paths)
            unlink(path.c_str());
        outcome.paths.clear();
        outcome.files.clear();
    }
    if (!outcome.paths.empty())
        sync_spool_directory();
    pg_call([&] {
        SPI_cursor_close(portal);
        finish_job(job_id, outcome);
        SPI_finish();
    });
    if (outcome.rows > 0)
        wake_worker_at_commit();
    return Int64GetDatum(job_id);
}

}  // namespace

}  // namespace sfb::pg

SFB_PG_FUNCTION(sf_bulk_insert) {
    return sfb::pg::enqueue(fcinfo, sfb::Operation::Insert, "sf_bulk_insert");
}
SFB_PG_FUNCTION(sf_bulk_update) {
    return sfb::pg::enqueue(fcinfo, sfb::Operation::Update, "sf_bulk_update");
}
SFB_PG_FUNCTION(sf_bulk_upsert) {
    return sfb::pg::enqueue(fcinfo, sfb::Operation::Upsert, "sf_bulk_upsert");
}
SFB_PG_FUNCTION(sf_bulk_delete) {
    return sfb::pg::enqueue(fcinfo, sfb::Operation::Delete, "sf_bulk_delete");
}
SFB_PG_FUNCTION(sf_bulk_hard_delete) {
    return sfb::pg::enqueue(fcinfo, sfb::Operation::HardDelete, "sf_bulk_hard_delete");
}
