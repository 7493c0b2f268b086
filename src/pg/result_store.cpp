// Storing Salesforce's per-row results in sf_bulk.results (see result_store.h).
//
// A million result rows per upload is the normal case, so this takes the path COPY FROM takes rather than
// SQL: each CSV record becomes the values of a tuple slot directly (text columns as text datums, `fields`
// as a Jsonb built from the values, with no JSON text in between for PostgreSQL to parse again), and
// batches of slots go to table_multi_insert (one WAL record per heap page rather than per row) followed by
// their index entries. Each batch lives in a memory context reset after it, so memory is bounded by the
// batch whatever the file's size.
//
// Boundary: the CSV reader and the header plan are C++; everything that calls PostgreSQL is a method of
// ResultInserter, which creates no C++ object and runs only through pg_call.
#include "core/bulk_api.h"
#include "core/error.h"
#include "core/csv.h"
#include "core/ingest_machine.h"
#include "core/row_fingerprint.h"
#include "result_store.h"

#include "pg_headers.h"

extern "C" {
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

#include "compat.h"
#include "guard.h"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace sfb::pg {

namespace {

// The columns of sf_bulk.results written here. Their positions are looked up by name once per file, so the
// table's column order does not matter; a column this code does not know is an error, not a silent NULL.
enum Column {
    kJobId,
    kChunkNo,
    kKind,
    kKey,
    kSfId,
    kSfCreated,
    kSfError,
    kErrorCode,
    kErrorMessage,
    kErrorFields,
    kRowHash,
    kFields,
    kColumns
};
struct ColumnSpec {
    const char *name;
    Oid type;
};
constexpr ColumnSpec kColumnSpecs[kColumns] = {{"job_id", INT8OID},        {"chunk_no", INT4OID},
                                               {"kind", CHAROID},          {"key", TEXTOID},
                                               {"sf_id", TEXTOID},         {"sf_created", BOOLOID},
                                               {"sf_error", TEXTOID},      {"error_code", TEXTOID},
                                               {"error_message", TEXTOID}, {"error_fields", TEXTARRAYOID},
                                               {"row_hash", INT8OID},      {"fields", JSONBOID}};

// What a result file's header says about every row, worked out once: which columns carry Salesforce's
// sf__Id, sf__Created and sf__Error, which carry the values sent (fingerprinted in file order, as the
// spool writer did), and the keys of `fields` in jsonb's storage order (shorter keys first, then
// bytewise), each with the column(s) it comes from. Columns are listed ascending; a name the header
// repeats keeps its last value present in the row, as assigning the columns one by one would.
struct HeaderPlan {
    struct Key {
        std::string name;
        std::vector<int> columns;
    };
    std::vector<int> sf_id, sf_created, sf_error;
    std::vector<int> sent;
    std::vector<Key> keys;
    std::size_t width = 0;  // header fields; a row's later fields are ignored
};

HeaderPlan plan_header(const std::vector<std::string_view> &header) {
    HeaderPlan plan;
    plan.width = header.size();
    for (std::size_t i = 0; i < header.size(); ++i) {
        int column = static_cast<int>(i);
        std::string_view name = header[i];
        if (name == "sf__Id") {
            plan.sf_id.push_back(column);
        } else if (name == "sf__Created") {
            plan.sf_created.push_back(column);
        } else if (name == "sf__Error") {
            plan.sf_error.push_back(column);
        } else {
            plan.sent.push_back(column);
            auto same = std::find_if(plan.keys.begin(), plan.keys.end(),
                                     [&](const HeaderPlan::Key &key) { return key.name == name; });
            if (same == plan.keys.end())
                plan.keys.push_back(HeaderPlan::Key{std::string(name), {column}});
            else
                same->columns.push_back(column);
        }
    }
    // jsonb keeps an object's keys sorted by length, then bytes (lengthCompareJsonbStringValue), and
    // looks them up by binary search: the Jsonb built below relies on this order.
    std::sort(plan.keys.begin(), plan.keys.end(), [](const HeaderPlan::Key &a, const HeaderPlan::Key &b) {
        if (a.name.size() != b.name.size())
            return a.name.size() < b.name.size();
        return a.name < b.name;
    });
    return plan;
}

// The last of `columns` a row of `count` fields has, or -1.
int last_present(const std::vector<int> &columns, std::size_t count) noexcept {
    for (auto it = columns.rbegin(); it != columns.rend(); ++it)
        if (static_cast<std::size_t>(*it) < count)
            return *it;
    return -1;
}

// Raises an ERROR unless `value` is valid text in the database's encoding (the bytes come from a file, and
// text and jsonb in the table must be valid). All-ASCII bytes without NUL are valid in every server
// encoding, and nearly every value is such: those are checked here, 8 bytes at a time, without the call.
void check_encoding(std::string_view value) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
    const char *p = value.data();
    std::size_t n = value.size();
    bool plain = true;
    for (; n >= 8 && plain; p += 8, n -= 8) {
        std::uint64_t word;
        memcpy(&word, p, 8);
        plain = ((word | ((word - kOnes) & ~word)) & kHighs) == 0;  // no high bit, no zero byte
    }
    for (; n > 0 && plain; ++p, --n)
        plain = *p != 0 && static_cast<unsigned char>(*p) < 0x80;
    if (!plain)
        pg_verifymbstr(value.data(), static_cast<int>(value.size()), false);
}

// One result row as views into the CSV reader's buffer and the caller's strings; valid for one add().
struct RowValues {
    const std::string_view *fields;
    std::size_t count;  // fields of this row that the header names
    std::string_view sf_id, sf_error, error_code, error_message;
    std::string_view error_fields;  // comma-separated
    int created;                    // -1: no sf__Created column
    std::int64_t row_hash;
};

// Inserts rows of one kind for one upload into sf_bulk.results, as COPY FROM does. Every method makes
// PostgreSQL calls only and is run through pg_call; the object holds pointers and numbers only. After an
// error nothing needs releasing here: the transaction's abort closes the relation, drops the buffer pin and
// frees the memory contexts.
class ResultInserter {
  public:
    // Rows per table_multi_insert call, and the bytes of values after which a batch goes earlier (a few
    // long rows must not make a batch large). COPY FROM uses 1,000 rows / 64 kB per buffer.
    static constexpr int kBatchRows = 1000;
    static constexpr std::size_t kBatchBytes = 1 << 20;
    static constexpr std::size_t kBatchKeeperBytes = 2 << 20;

    ResultInserter(std::int64_t job_id, int chunk_no, char kind, const HeaderPlan &plan)
        : job_id_(job_id), chunk_no_(chunk_no), kind_(kind), plan_(plan) {}

    void open();
    void add(const RowValues &row);
    void finish();

  private:
    Datum text_datum(std::string_view value, bool *is_null);
    Datum error_fields_datum(std::string_view joined);
    Datum fields_datum(const RowValues &row);
    void flush();

    std::int64_t job_id_;
    int chunk_no_;
    char kind_;
    const HeaderPlan &plan_;
    Relation rel_ = nullptr;
    EState *estate_ = nullptr;
    ResultRelInfo *rel_info_ = nullptr;
    BulkInsertState bulk_state_ = nullptr;
    CommandId command_ = 0;
    MemoryContext file_context_ = nullptr;   // slots, executor state: until finish()
    MemoryContext batch_context_ = nullptr;  // the values of the rows of one batch
    TupleTableSlot *slots_[kBatchRows] = {};
    int used_ = 0;
    std::size_t bytes_ = 0;
    int attr_[kColumns] = {};  // 0-based attribute index of each Column
    int *present_ = nullptr;   // per row: (key, column) of each key the row has
};

void ResultInserter::open() {
    file_context_ = AllocSetContextCreate(CurrentMemoryContext, "sf_bulk results", ALLOCSET_DEFAULT_SIZES);
    MemoryContext caller = MemoryContextSwitchTo(file_context_);
    Oid relid = get_relname_relid("results", get_namespace_oid("sf_bulk", false));
    if (!OidIsValid(relid))
        elog(ERROR, "table sf_bulk.results does not exist");
    rel_ = table_open(relid, RowExclusiveLock);
    // Rows go in without the executor's INSERT: no trigger would fire and no partition would be chosen, so
    // a table that has either is refused rather than written past them.
    if (rel_->rd_rel->relkind != RELKIND_RELATION ||
        (rel_->trigdesc != nullptr &&
         (rel_->trigdesc->trig_insert_before_row || rel_->trigdesc->trig_insert_after_row ||
          rel_->trigdesc->trig_insert_instead_row || rel_->trigdesc->trig_insert_before_statement ||
          rel_->trigdesc->trig_insert_after_statement)))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("sf_bulk cannot store results in sf_bulk.results: it has insert triggers or "
                               "is not a plain table")));
    TupleDesc desc = RelationGetDescr(rel_);
    for (int c = 0; c < kColumns; ++c)
        attr_[c] = -1;
    for (int i = 0; i < desc->natts; ++i) {
        Form_pg_attribute attr = TupleDescAttr(desc, i);
        if (attr->attisdropped)
            continue;
        int found = -1;
        for (int c = 0; c < kColumns; ++c)
            if (strcmp(NameStr(attr->attname), kColumnSpecs[c].name) == 0 &&
                attr->atttypid == kColumnSpecs[c].type)
                found = c;
        // Nothing here would fill another column (no defaults are computed): refuse rather than guess.
        if (found < 0)
            elog(ERROR, "sf_bulk.results has an unexpected column \"%s\"", NameStr(attr->attname));
        attr_[found] = i;
    }
    for (int c = 0; c < kColumns; ++c)
        if (attr_[c] < 0)
            elog(ERROR, "sf_bulk.results has no column \"%s\" of the expected type", kColumnSpecs[c].name);
    // The keys of `fields` must be valid text in the database's encoding, as the values are (see add()).
    for (const HeaderPlan::Key &key : plan_.keys)
        pg_verifymbstr(key.name.data(), static_cast<int>(key.name.size()), false);

    estate_ = CreateExecutorState();
    rel_info_ = makeNode(ResultRelInfo);
    InitResultRelInfo(rel_info_, rel_, 0, nullptr, 0);
    ExecOpenIndices(rel_info_, false);
    bulk_state_ = GetBulkInsertState();
    command_ = GetCurrentCommandId(true);
    for (TupleTableSlot *&slot : slots_)
        slot = table_slot_create(rel_, nullptr);
    present_ = static_cast<int *>(palloc(sizeof(int) * 2 * std::max<std::size_t>(1, plan_.keys.size())));
    // A batch holds at most kBatchBytes of values plus one row (about 400 kB for 1,000 rows of nine short
    // fields): a first block that holds a whole batch and is kept over resets spares malloc, munmap and page
    // faults per batch.
    batch_context_ = AllocSetContextCreate(file_context_, "sf_bulk results batch", kBatchKeeperBytes,
                                           kBatchKeeperBytes, ALLOCSET_DEFAULT_MAXSIZE);
    MemoryContextSwitchTo(caller);
}

// A text value, or NULL when empty (as the result columns have always been stored). Checked for the
// database's encoding first: the bytes come from a file, and text in the table must be valid.
Datum ResultInserter::text_datum(std::string_view value, bool *is_null) {
    if (value.empty()) {
        *is_null = true;
        return (Datum)0;
    }
    *is_null = false;
    check_encoding(value);
    bytes_ += value.size();
    return PointerGetDatum(cstring_to_text_with_len(value.data(), static_cast<int>(value.size())));
}

// error_fields: the comma-separated names split on every comma, as string_to_array(text, ',') does.
Datum ResultInserter::error_fields_datum(std::string_view joined) {
    int count = 1;
    for (char c : joined)
        count += c == ',';
    Datum *elements = static_cast<Datum *>(palloc(sizeof(Datum) * count));
    std::size_t start = 0;
    for (int i = 0; i < count; ++i) {
        std::size_t comma = joined.find(',', start);
        std::size_t end = comma == std::string_view::npos ? joined.size() : comma;
        elements[i] =
            PointerGetDatum(cstring_to_text_with_len(joined.data() + start, static_cast<int>(end - start)));
        start = end + 1;
    }
    return PointerGetDatum(construct_array(elements, count, TEXTOID, -1, false, TYPALIGN_INT));
}

// `fields`: the values sent, keyed by the header's names, as a jsonb object of strings written straight in
// jsonb's binary layout (utils/jsonb.h; the on-disk format, which pg_upgrade keeps stable): the container
// header, one JEntry per key then one per value, then the keys' bytes, then the values' bytes. This is what
// convertToJsonb makes of the same pairs, without a JsonbValue tree or a growing buffer per row. The keys
// are unique and in jsonb's order already (plan_header); a JEntry holds its child's length, except that
// every JB_OFFSET_STRIDE'th holds the end offset instead, as convertJsonbObject writes them. The
// integration tests compare what is stored with jsonb_in's reading of its text, above and below that
// stride.
Datum ResultInserter::fields_datum(const RowValues &row) {
    int pairs = 0;
    std::size_t data = 0;
    for (std::size_t k = 0; k < plan_.keys.size(); ++k) {
        int column = last_present(plan_.keys[k].columns, row.count);
        if (column < 0)
            continue;
        check_encoding(row.fields[column]);
        data += plan_.keys[k].name.size() + row.fields[column].size();
        present_[2 * pairs] = static_cast<int>(k);
        present_[2 * pairs + 1] = column;
        ++pairs;
    }
    if (data > JENTRY_OFFLENMASK)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("total size of jsonb object elements exceeds the maximum of %u bytes",
                               JENTRY_OFFLENMASK)));
    std::size_t size = offsetof(Jsonb, root.children) + sizeof(JEntry) * 2 * pairs + data;
    Jsonb *jsonb = static_cast<Jsonb *>(palloc(size));
    SET_VARSIZE(jsonb, size);
    jsonb->root.header = static_cast<uint32>(pairs) | JB_FOBJECT;
    JEntry *entry = jsonb->root.children;
    char *out = reinterpret_cast<char *>(entry + 2 * pairs);
    uint32 end = 0;
    for (int half = 0; half < 2; ++half) {  // the keys, then the values
        for (int i = 0; i < pairs; ++i) {
            std::string_view bytes = half == 0 ? std::string_view(plan_.keys[present_[2 * i]].name)
                                               : row.fields[present_[2 * i + 1]];
            memcpy(out, bytes.data(), bytes.size());
            out += bytes.size();
            end += static_cast<uint32>(bytes.size());
            int child = half * pairs + i;
            *entry++ = child % JB_OFFSET_STRIDE == 0 ? (JENTRY_ISSTRING | JENTRY_HAS_OFF | end)
                                                     : (JENTRY_ISSTRING | static_cast<uint32>(bytes.size()));
        }
    }
    bytes_ += size;
    return JsonbPGetDatum(jsonb);
}

void ResultInserter::add(const RowValues &row) {
    MemoryContext caller = MemoryContextSwitchTo(batch_context_);
    TupleTableSlot *slot = slots_[used_];
    ExecClearTuple(slot);
    Datum *values = slot->tts_values;
    bool *nulls = slot->tts_isnull;
    int natts = slot->tts_tupleDescriptor->natts;
    for (int i = 0; i < natts; ++i) {
        values[i] = (Datum)0;
        nulls[i] = true;  // dropped columns stay NULL, and so does `key` (match_keys sets it)
    }
    values[attr_[kJobId]] = Int64GetDatum(job_id_);
    nulls[attr_[kJobId]] = false;
    values[attr_[kChunkNo]] = Int32GetDatum(chunk_no_);
    nulls[attr_[kChunkNo]] = false;
    values[attr_[kKind]] = CharGetDatum(kind_);
    nulls[attr_[kKind]] = false;
    values[attr_[kSfId]] = text_datum(row.sf_id, &nulls[attr_[kSfId]]);
    if (row.created >= 0) {
        values[attr_[kSfCreated]] = BoolGetDatum(row.created == 1);
        nulls[attr_[kSfCreated]] = false;
    }
    values[attr_[kSfError]] = text_datum(row.sf_error, &nulls[attr_[kSfError]]);
    values[attr_[kErrorCode]] = text_datum(row.error_code, &nulls[attr_[kErrorCode]]);
    values[attr_[kErrorMessage]] = text_datum(row.error_message, &nulls[attr_[kErrorMessage]]);
    if (!row.error_fields.empty()) {
        values[attr_[kErrorFields]] = error_fields_datum(row.error_fields);
        nulls[attr_[kErrorFields]] = false;
    }
    values[attr_[kRowHash]] = Int64GetDatum(row.row_hash);
    nulls[attr_[kRowHash]] = false;
    values[attr_[kFields]] = fields_datum(row);
    nulls[attr_[kFields]] = false;
    ExecStoreVirtualTuple(slot);
    MemoryContextSwitchTo(caller);
    if (++used_ == kBatchRows || bytes_ >= kBatchBytes)
        flush();
}

void ResultInserter::flush() {
    if (used_ == 0)
        return;
    // Work memory of the insert (tuples formed from the slots, TOAST, index tuples) goes with the batch.
    MemoryContext caller = MemoryContextSwitchTo(batch_context_);
    if (rel_->rd_att->constr != nullptr)
        for (int i = 0; i < used_; ++i)
            ExecConstraints(rel_info_, slots_[i], estate_);
    table_multi_insert(rel_, slots_, used_, command_, 0, bulk_state_);
    for (int i = 0; i < used_; ++i) {
        if (rel_info_->ri_NumIndices > 0)
            list_free(
                sfb_exec_insert_index_tuples(rel_info_, slots_[i], estate_, false, false, nullptr, NIL));
        ExecClearTuple(slots_[i]);
    }
    ResetPerTupleExprContext(estate_);
    MemoryContextSwitchTo(caller);
    MemoryContextReset(batch_context_);
    used_ = 0;
    bytes_ = 0;
    // A long store must still answer procsignal barriers (DROP DATABASE elsewhere waits for them) and
    // cancellation; shutdown requests only set a flag the worker loop reads.
    CHECK_FOR_INTERRUPTS();
}

void ResultInserter::finish() {
    flush();
    FreeBulkInsertState(bulk_state_);
    for (TupleTableSlot *slot : slots_)
        ExecDropSingleTupleTableSlot(slot);
    ExecCloseIndices(rel_info_);
    table_close(rel_, NoLock);  // the lock is kept until commit
    FreeExecutorState(estate_);
    MemoryContextDelete(file_context_);
}

}  // namespace

std::int64_t store_result_file(std::int64_t job_id, int chunk_no, const ChunkResultFile &file,
                               csv::Delimiter delimiter) {
    char kind = file.kind == IngestResult::Successful ? 's' : file.kind == IngestResult::Failed ? 'f' : 'u';
    std::ifstream in(file.path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT)
            return 0;  // never downloaded (e.g. no job ever existed): nothing to store
        // Anything else (EMFILE, EACCES, EIO) must not pass for "no results": the transaction rolls back and
        // the upload is stored again later.
        throw Error(ErrorKind::Internal,
                    "could not open the result file \"" + file.path +
                        "\": " + strerror(errno));  // pg_strerror, see port.h
    }
    HeaderPlan plan;
    bool have_header = false;
    ResultInserter inserter(job_id, chunk_no, kind, plan);
    std::int64_t rows = 0;
    RowFingerprint fingerprint;
    std::string error_code, error_message, error_fields;  // reused: only error rows fill them
    csv::ReaderOptions options;
    options.delimiter = delimiter;
    csv::Reader reader(options, [&](const std::vector<std::string_view> &fields) {
        if (!have_header) {
            // Blank lines before the header are skipped, as they always were.
            if (fields.empty())
                return;
            plan = plan_header(fields);
            have_header = true;
            pg_call([&inserter] { inserter.open(); });
            return;
        }
        if (fields.empty())
            return;
        RowValues row{};
        row.fields = fields.data();
        row.count = std::min(fields.size(), plan.width);
        int column = last_present(plan.sf_id, row.count);
        if (column >= 0)
            row.sf_id = fields[column];
        column = last_present(plan.sf_created, row.count);
        row.created = column < 0 ? -1 : fields[column] == "true" ? 1 : 0;
        column = last_present(plan.sf_error, row.count);
        if (column >= 0)
            row.sf_error = fields[column];
        // Salesforce echoes the uploaded columns in upload order: the same fingerprint as when sent.
        fingerprint.reset();
        for (int sent : plan.sent) {
            if (static_cast<std::size_t>(sent) >= row.count)
                break;
            fingerprint.add(fields[sent]);
        }
        row.row_hash = fingerprint.value();
        error_code.clear();
        error_message.clear();
        error_fields.clear();
        if (!row.sf_error.empty()) {
            std::vector<RowError> errors = split_row_errors(row.sf_error);
            if (!errors.empty()) {
                error_code = errors.front().code;
                error_message = errors.front().message;
                for (const std::string &field : errors.front().fields)
                    error_fields += (error_fields.empty() ? "" : ",") + field;
            }
        }
        row.error_code = error_code;
        row.error_message = error_message;
        row.error_fields = error_fields;
        pg_call([&inserter, &row] { inserter.add(row); });
        ++rows;
    });
    std::vector<char> buffer(1 << 18);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        if (in.gcount() > 0)
            reader.feed(buffer.data(), static_cast<std::size_t>(in.gcount()));
    }
    if (in.bad())
        throw Error(ErrorKind::Internal, "could not read the result file \"" + file.path + "\"");
    reader.finish();
    if (have_header)
        pg_call([&inserter] { inserter.finish(); });
    return rows;
}

bool upload_has_rows(const char *table, std::int64_t job_id, int chunk_no) {
    char query[160];
    snprintf(query, sizeof query,
             "SELECT 1 FROM %s WHERE job_id OPERATOR(pg_catalog.=) $1 AND chunk_no OPERATOR(pg_catalog.=) $2 "
             "LIMIT 1",
             table);
    Oid types[2] = {INT8OID, INT4OID};
    Datum values[2] = {Int64GetDatum(job_id), Int32GetDatum(chunk_no)};
    if (SPI_execute_with_args(query, 2, types, values, nullptr, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read %s", table);
    return SPI_processed > 0;
}

// Gives each stored result of a chunk the key of the row it answers: results and sent rows with the same
// fingerprint are paired one to one (identical rows in order), all in SQL. Returns the results left without
// a row (only when the job kept keys).
std::int64_t match_keys(std::int64_t job_id, int chunk_no) {
    if (!upload_has_rows("sf_bulk.sent", job_id, chunk_no))
        return 0;
    Oid types[2] = {INT8OID, INT4OID};
    Datum values[2] = {Int64GetDatum(job_id), Int32GetDatum(chunk_no)};
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
