#include "core/sync_plan.h"

#include "core/error.h"
#include "core/oauth.h"  // form_urlencode
#include "core/sf_names.h"
#include "core/soql_literal.h"
#include "core/sf_values.h"
#include "core/text_util.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace sfb {

namespace {

using json = nlohmann::json;

constexpr std::int64_t kMinuteMs = 60 * 1000;

bool is_type(const FieldDescribe &f, std::string_view type) {
    return ascii_iequals(f.type, type);
}

// What a Bulk API 2.0 query job cannot return (docs/soql-and-rest.md trap 21, §2.9).
bool bulk_readable(const FieldDescribe &f) {
    return !is_type(f, "address") && !is_type(f, "location") && !is_type(f, "base64") &&
           !f.deprecated_and_hidden;
}

std::string lower(std::string_view s) {
    return ascii_lowercase(s);
}

// Howard Hinnant's civil_from_days: the inverse of days_from_civil (text_util.h).
CivilDateTime civil_from_epoch_ms(std::int64_t epoch_ms) {
    std::int64_t ms = epoch_ms % 1000;
    std::int64_t seconds = epoch_ms / 1000;
    if (ms < 0) {
        ms += 1000;
        seconds -= 1;
    }
    std::int64_t days = seconds / 86400;
    std::int64_t rest = seconds % 86400;
    if (rest < 0) {
        rest += 86400;
        days -= 1;
    }
    const std::int64_t z = days + 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const std::int64_t doe = z - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
    const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
    CivilDateTime out;
    out.year = static_cast<int>(yoe + era * 400 + (m <= 2 ? 1 : 0));
    out.month = static_cast<int>(m);
    out.day = static_cast<int>(d);
    out.hour = static_cast<int>(rest / 3600);
    out.minute = static_cast<int>(rest % 3600 / 60);
    out.second = static_cast<int>(rest % 60);
    out.millisecond = static_cast<int>(ms);
    return out;
}

std::int64_t floor_to_minute(std::int64_t ms) {
    std::int64_t r = ms % kMinuteMs;
    return r < 0 ? ms - r - kMinuteMs : ms - r;
}

// "2025-11-01T00:00:00+00:00" (what §4.3's example sends, before URL encoding).
std::string replication_time(std::int64_t epoch_ms) {
    CivilDateTime c = civil_from_epoch_ms(epoch_ms);
    c.millisecond = 0;
    std::string text;
    append_utc_datetime(text, c);  // "...T00:00:00.000Z"
    text.resize(19);
    return text + "+00:00";
}

std::string interval_text(std::int64_t ms) {
    if (ms % (86400 * 1000LL) == 0)
        return std::to_string(ms / (86400 * 1000LL)) + (ms == 86400 * 1000LL ? " day" : " days");
    if (ms % (3600 * 1000LL) == 0)
        return std::to_string(ms / (3600 * 1000LL)) + (ms == 3600 * 1000LL ? " hour" : " hours");
    if (ms % kMinuteMs == 0)
        return std::to_string(ms / kMinuteMs) + (ms == kMinuteMs ? " minute" : " minutes");
    return std::to_string(ms / 1000) + " s";
}

const json &member(const json &object, const char *key, const char *what) {
    auto it = object.find(key);
    if (it == object.end())
        throw Error(ErrorKind::ExternalService, std::string("the /deleted/ answer has no ") + what);
    return *it;
}

std::int64_t timestamp_member(const json &value, const char *key) {
    if (!value.is_string())
        throw Error(ErrorKind::ExternalService,
                    std::string("the /deleted/ answer's ") + key + " is not a string");
    std::optional<std::int64_t> ms = parse_salesforce_datetime_ms(value.get<std::string>());
    if (!ms)
        throw Error(ErrorKind::ExternalService,
                    std::string("the /deleted/ answer's ") + key +
                        " is not a date-time: " + quote_for_message(value.get<std::string>()));
    return *ms;
}

}  // namespace

std::string_view to_string(SyncRunKind kind) {
    switch (kind) {
        case SyncRunKind::Full:
            return "full";
        case SyncRunKind::Incremental:
            return "incremental";
        case SyncRunKind::Formulas:
            return "formulas";
    }
    return "full";
}

std::string_view to_string(SyncDeletes deletes) {
    return deletes == SyncDeletes::Mark ? "mark" : "delete";
}

SyncDeletes parse_sync_deletes(std::string_view name) {
    if (name == "delete")
        return SyncDeletes::Delete;
    if (name == "mark")
        return SyncDeletes::Mark;
    throw Error(ErrorKind::InvalidParameter,
                "deletes must be 'delete' or 'mark', not " + quote_for_message(name));
}

void check_mirrorable(const ObjectDescribe &object) {
    if (!object.queryable)
        throw Error(ErrorKind::InvalidParameter, "object " + object.name + " cannot be queried");
    if (!object.replicateable)
        throw Error(ErrorKind::InvalidParameter,
                    "object " + object.name +
                        " is not replicateable: Salesforce keeps no change log of it (/updated/, /deleted/), "
                        "so it cannot be mirrored incrementally");
    const FieldDescribe *id = object.find_field(kSyncIdField);
    const FieldDescribe *stamp = object.find_field(kSyncStampField);
    const FieldDescribe *deleted = object.find_field(kSyncDeletedField);
    if (id == nullptr)
        throw Error(ErrorKind::InvalidParameter, "object " + object.name + " has no Id field");
    if (stamp == nullptr || !is_type(*stamp, "datetime"))
        throw Error(ErrorKind::InvalidParameter,
                    "object " + object.name +
                        " has no SystemModstamp field, which an incremental mirror reads its changes by");
    if (deleted == nullptr || !is_type(*deleted, "boolean"))
        throw Error(ErrorKind::InvalidParameter,
                    "object " + object.name + " has no IsDeleted field, which a mirror reads deletions by");
}

std::vector<std::string> sync_fields(const ObjectDescribe &object,
                                     const std::optional<std::vector<std::string>> &requested) {
    std::vector<std::string> out;
    std::set<std::string> seen;
    auto add = [&](const std::string &name) {
        if (seen.insert(lower(name)).second)
            out.push_back(name);
    };
    for (std::string_view always : {kSyncIdField, kSyncStampField, kSyncDeletedField}) {
        const FieldDescribe *f = object.find_field(always);
        add(f != nullptr ? f->name : std::string(always));
    }
    if (!requested) {
        for (const FieldDescribe &f : object.fields)
            if (bulk_readable(f))
                add(f.name);
        return out;
    }
    for (const std::string &name : *requested) {
        if (name.find('.') != std::string::npos)
            throw Error(ErrorKind::InvalidParameter,
                        "fields name fields of " + object.name + " itself, and " + quote_for_message(name) +
                            " is a relationship path: a change of the record it reaches does not move " +
                            object.name + "'s SystemModstamp, so the mirror would keep a stale value");
        const FieldDescribe *f = object.find_field(name);
        add(f != nullptr ? f->name : name);
    }
    return out;
}

std::vector<std::string> removed_fields(const std::vector<std::string> &previous,
                                        const ObjectDescribe &object) {
    std::vector<std::string> out;
    for (const std::string &name : previous)
        if (object.find_field(name) == nullptr)
            out.push_back(name);
    return out;
}

std::vector<std::string> added_fields(const std::vector<std::string> &fields,
                                      const std::vector<std::string> &previous) {
    std::set<std::string> known;
    for (const std::string &p : previous)
        known.insert(lower(p));
    std::vector<std::string> out;
    for (const std::string &f : fields)
        if (known.count(lower(f)) == 0)
            out.push_back(f);
    return out;
}

std::vector<std::string> calculated_fields(const std::vector<std::string> &fields,
                                           const ObjectDescribe &object) {
    std::vector<std::string> out;
    for (const std::string &name : fields) {
        const FieldDescribe *f = object.find_field(name);
        if (f != nullptr && f->calculated)
            out.push_back(f->name);
    }
    return out;
}

SyncDecision decide_sync_run(const SyncSchedule &s, std::int64_t now_ms) {
    SyncDecision d;
    if (!s.watermark_ms) {
        d.kind = SyncRunKind::Full;
        d.reason = "first run: no run of this mirror has been applied yet";
        return d;
    }
    if (s.reconcile_ms && (!s.last_full_ms || now_ms - *s.last_full_ms >= *s.reconcile_ms)) {
        d.kind = SyncRunKind::Full;
        d.reason = "reconcile every " + interval_text(*s.reconcile_ms) + ": the last full run started " +
                   (s.last_full_ms ? utc_datetime_text(*s.last_full_ms) : std::string("never"));
        return d;
    }
    if (s.has_calculated && s.refresh_formulas_ms &&
        (!s.last_formulas_ms || now_ms - *s.last_formulas_ms >= *s.refresh_formulas_ms)) {
        d.kind = SyncRunKind::Formulas;
        d.reason = "refresh_formulas every " + interval_text(*s.refresh_formulas_ms) +
                   ": calculated fields last read in a run started " +
                   (s.last_formulas_ms ? utc_datetime_text(*s.last_formulas_ms) : std::string("never"));
        return d;
    }
    d.kind = SyncRunKind::Incremental;
    d.since_ms = *s.watermark_ms - s.overlap_ms;
    d.reason = "changes since " + utc_datetime_text(*d.since_ms) + " (watermark " +
               utc_datetime_text(*s.watermark_ms) + " less the overlap)";
    return d;
}

void check_sync_filter(std::string_view filter) {
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < filter.size(); ++i) {
        const char c = filter[i];
        if (in_string) {
            if (c == '\\')
                ++i;  // an escape: the next character is part of the literal
            else if (c == '\'')
                in_string = false;
        } else if (c == '\'') {
            in_string = true;
        } else if (c == '(') {
            ++depth;
        } else if (c == ')' && --depth < 0) {
            throw Error(ErrorKind::InvalidParameter, "filter: ')' at character " + std::to_string(i + 1) +
                                                         " closes a parenthesis the filter did not open");
        }
    }
    if (depth > 0 && !in_string)
        throw Error(ErrorKind::InvalidParameter, "filter: " + std::to_string(depth) + " parenthes" +
                                                     (depth > 1 ? "es are" : "is is") + " not closed");
}

std::string sync_soql(const std::string &object, const std::vector<std::string> &fields,
                      const std::vector<std::string> &calculated, const std::optional<std::string> &filter,
                      const SyncDecision &decision) {
    std::string soql = "SELECT ";
    if (decision.kind == SyncRunKind::Formulas) {
        soql += kSyncIdField;
        for (const std::string &f : calculated)
            soql += ", " + f;
    } else {
        for (std::size_t i = 0; i < fields.size(); ++i)
            soql += (i > 0 ? ", " : "") + fields[i];
    }
    soql += " FROM " + object;
    std::vector<std::string> conditions;
    if (filter && !filter->empty())
        conditions.push_back("(" + *filter + ")");
    if (decision.kind == SyncRunKind::Incremental && decision.since_ms) {
        // Floored to the second (SOQL datetimes have none finer): a bound earlier than asked reads a few more
        // rows, never fewer.
        std::int64_t since_ms = *decision.since_ms;
        std::int64_t fraction = since_ms % 1000;
        since_ms -= fraction < 0 ? fraction + 1000 : fraction;
        CivilDateTime since = civil_from_epoch_ms(since_ms);
        conditions.push_back(std::string(kSyncStampField) + " >= " + soql_datetime_literal(since));
    }
    for (std::size_t i = 0; i < conditions.size(); ++i)
        soql += (i == 0 ? " WHERE " : " AND ") + conditions[i];
    return soql;
}

std::string utc_datetime_text(std::int64_t epoch_ms) {
    std::string out;
    append_utc_datetime(out, civil_from_epoch_ms(epoch_ms));
    return out;
}

DeletedWindow deleted_window(std::int64_t cursor_ms, std::int64_t overlap_ms, std::int64_t now_ms) {
    DeletedWindow w;
    w.end_ms = floor_to_minute(now_ms);
    w.start_ms = floor_to_minute(cursor_ms - overlap_ms);
    w.needed_from_ms = floor_to_minute(cursor_ms);
    if (w.end_ms - w.start_ms < 2 * kMinuteMs)
        w.start_ms = w.end_ms - 2 * kMinuteMs;
    return w;
}

std::string deleted_records_path(const ApiVersion &version, std::string_view object,
                                 const DeletedWindow &window) {
    validate_object_name(object);
    return sobjects_path(version) + "/" + std::string(object) +
           "/deleted/?start=" + form_urlencode(replication_time(window.start_ms)) +
           "&end=" + form_urlencode(replication_time(window.end_ms));
}

DeletedRecords parse_deleted_records(std::string_view body) {
    json doc = json::parse(body.begin(), body.end(), nullptr, false);
    if (!doc.is_object())
        throw Error(ErrorKind::ExternalService, "the /deleted/ answer is not a JSON object");
    DeletedRecords out;
    const json &records = member(doc, "deletedRecords", "deletedRecords");
    if (!records.is_array())
        throw Error(ErrorKind::ExternalService, "the /deleted/ answer's deletedRecords is not a list");
    for (const json &r : records) {
        if (!r.is_object() || !r.contains("id") || !r["id"].is_string())
            throw Error(ErrorKind::ExternalService,
                        "a deletedRecords entry of the /deleted/ answer has no id");
        out.ids.push_back(r["id"].get<std::string>());
    }
    out.latest_covered_ms =
        timestamp_member(member(doc, "latestDateCovered", "latestDateCovered"), "latestDateCovered");
    auto earliest = doc.find("earliestDateAvailable");
    if (earliest != doc.end() && !earliest->is_null())
        out.earliest_available_ms = timestamp_member(*earliest, "earliestDateAvailable");
    return out;
}

bool deleted_window_covered(const DeletedRecords &answer, const DeletedWindow &window) {
    return !answer.earliest_available_ms || *answer.earliest_available_ms <= window.needed_from_ms;
}

}  // namespace sfb
