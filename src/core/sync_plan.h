#include "core/core_only.h"
#pragma once

// The decisions of one sf_bulk_sync run (docs/soql-and-rest.md §4): whether an object can be mirrored, which
// fields a mirror reads, what kind of run a call starts (full, incremental, formulas), the SOQL of that run,
// and the REST /deleted/ window that finds records purged from the recycle bin. Pure: describes, times
// (milliseconds since the epoch, UTC) and answers come in, decisions and text go out, so every rule is
// unit-tested without an org or a database. The PostgreSQL side (src/pg/sync_enqueue.cpp, sync_load.cpp)
// reads the state, makes the calls and applies the rows.
#include "core/bulk_api.h"
#include "core/describe.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sfb {

enum class SyncRunKind {
    Full,         // every row (queryAll), merged; rows Salesforce no longer has are removed (or marked)
    Incremental,  // rows with SystemModstamp >= watermark - overlap (queryAll), merged; deletions applied
    Formulas,     // Id and the calculated fields of every row (query), updating those columns only
};
std::string_view to_string(SyncRunKind kind);  // "full", "incremental", "formulas"

enum class SyncDeletes { Delete, Mark };
std::string_view to_string(SyncDeletes deletes);        // "delete", "mark"
SyncDeletes parse_sync_deletes(std::string_view name);  // exact lower case; throws InvalidParameter

// The fields every mirror reads whatever `fields` says: the key, the watermark and the deletion flag.
inline constexpr std::string_view kSyncIdField = "Id";
inline constexpr std::string_view kSyncStampField = "SystemModstamp";
inline constexpr std::string_view kSyncDeletedField = "IsDeleted";

// Throws sfb::Error(InvalidParameter) naming the object when it cannot be mirrored: not queryable, not
// replicateable (Salesforce refuses /updated/ and /deleted/ for it), or without an Id, a datetime
// SystemModstamp or a boolean IsDeleted field.
void check_mirrorable(const ObjectDescribe &object);

// The fields a mirror reads, in describe order after Id, SystemModstamp and IsDeleted: with `requested`
// nullopt every field a Bulk query returns (not compound address/location, not base64, not
// deprecatedAndHidden); otherwise those fields as the describe spells them. A requested name the describe
// does not have is left as written: the SOQL check after this names it with the closest fields.
// Case-insensitive duplicates are dropped. A relationship path (Owner.Email) throws InvalidParameter: its
// changes do not move the object's SystemModstamp.
std::vector<std::string> sync_fields(const ObjectDescribe &object,
                                     const std::optional<std::vector<std::string>> &requested);

// The fields of `previous` (a run's field list) that `object` no longer describes, as written there.
std::vector<std::string> removed_fields(const std::vector<std::string> &previous,
                                        const ObjectDescribe &object);

// The fields of `fields` that are new against `previous` (case-insensitive), in `fields` order.
std::vector<std::string> added_fields(const std::vector<std::string> &fields,
                                      const std::vector<std::string> &previous);

// The calculated (formula, roll-up) fields of `fields`, as the describe spells them.
std::vector<std::string> calculated_fields(const std::vector<std::string> &fields,
                                           const ObjectDescribe &object);

// A mirror's state and schedule as far as choosing the next run goes.
struct SyncSchedule {
    std::optional<std::int64_t> watermark_ms;      // nullopt: no run has been applied
    std::optional<std::int64_t> last_full_ms;      // when the last applied full run was started
    std::optional<std::int64_t> last_formulas_ms;  // ... and the last applied run that read calculated fields
    std::int64_t overlap_ms = 5 * 60 * 1000;
    std::optional<std::int64_t> refresh_formulas_ms;  // the options' intervals; nullopt: never
    std::optional<std::int64_t> reconcile_ms;
    bool has_calculated = false;  // the mirror reads calculated fields
};

struct SyncDecision {
    SyncRunKind kind = SyncRunKind::Full;
    std::string reason;                    // for sf_bulk_syncs.last_reason: why this kind
    std::optional<std::int64_t> since_ms;  // Incremental: SystemModstamp >= this (watermark - overlap)
};

// First run (no watermark): Full. A reconcile due: Full. Calculated fields to refresh: Formulas. Otherwise
// Incremental from watermark - overlap.
SyncDecision decide_sync_run(const SyncSchedule &schedule, std::int64_t now_ms);

// Throws InvalidParameter when the filter's parentheses (outside string literals) do not pair up: the filter
// is ANDed into every run in parentheses, and "a = 1) OR (b = 2" would escape them.
void check_sync_filter(std::string_view filter);

// The SOQL of a run: SELECT the fields (Formulas: Id and `calculated`) FROM object, with WHERE (filter) AND
// SystemModstamp >= since for an incremental run. The filter goes in parentheses, as written.
std::string sync_soql(const std::string &object, const std::vector<std::string> &fields,
                      const std::vector<std::string> &calculated, const std::optional<std::string> &filter,
                      const SyncDecision &decision);

// "2025-11-02T22:07:19.000Z" for a SOQL datetime literal and for messages.
std::string utc_datetime_text(std::int64_t epoch_ms);

// The /deleted/ window of an incremental run: from `cursor_ms` (where the last window ended, or the
// watermark) less the overlap, to now, both on whole minutes (Salesforce drops the seconds) and at least two
// minutes apart (a window under a minute returns nothing, and start must precede end by more than one).
struct DeletedWindow {
    std::int64_t start_ms = 0;
    std::int64_t end_ms = 0;
    // The cursor on its minute: the log must be complete from here (the overlap before it only guards against
    // late commits, which a purge cannot have taken before the last run saw them).
    std::int64_t needed_from_ms = 0;
};
DeletedWindow deleted_window(std::int64_t cursor_ms, std::int64_t overlap_ms, std::int64_t now_ms);

// GET .../sobjects/{object}/deleted/?start=...&end=... (URL-encoded, +00:00 offsets).
std::string deleted_records_path(const ApiVersion &version, std::string_view object,
                                 const DeletedWindow &window);

struct DeletedRecords {
    std::vector<std::string> ids;
    std::optional<std::int64_t> earliest_available_ms;  // where the deletion log is complete from
    std::int64_t latest_covered_ms = 0;                 // the next window starts here
};
// The 200 answer of /deleted/. Throws sfb::Error(ExternalService) for an answer without deletedRecords or
// latestDateCovered, or with a value of the wrong type.
DeletedRecords parse_deleted_records(std::string_view body);

// Whether the answer covers the window: the deletion log is complete from earliestDateAvailable, so a log
// that starts after the window's start has lost deletions the mirror has not seen.
bool deleted_window_covered(const DeletedRecords &answer, const DeletedWindow &window);

}  // namespace sfb
