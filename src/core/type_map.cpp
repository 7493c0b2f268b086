#include "core/type_map.h"

#include "core/sf_names.h"
#include "core/text_util.h"

#include <string_view>

namespace sfb {

namespace {

// What a field's values are, independent of how Salesforce names the type.
enum class ValueKind {
    Id,
    Text,
    Boolean,
    Int,
    Long,
    Decimal,
    Date,
    DateTime,
    Time,
    MultiPicklist,
    Binary,
    Compound,
    Json,
    Unknown
};

struct SalesforceTypeRow {
    std::string_view sf_type;  // lower case; describe sends "anyType", compared case-insensitively
    ValueKind kind;
};

// docs/soql-and-rest.md §3.3, left column.
constexpr SalesforceTypeRow kSalesforceTypes[] = {
    {"id", ValueKind::Id},
    {"reference", ValueKind::Id},
    {"string", ValueKind::Text},
    {"email", ValueKind::Text},
    {"phone", ValueKind::Text},
    {"url", ValueKind::Text},
    {"combobox", ValueKind::Text},
    {"textarea", ValueKind::Text},
    {"encryptedstring", ValueKind::Text},
    {"picklist", ValueKind::Text},
    {"anytype", ValueKind::Text},
    {"datacategorygroupreference", ValueKind::Text},
    {"masterrecord", ValueKind::Text},
    {"multipicklist", ValueKind::MultiPicklist},
    {"boolean", ValueKind::Boolean},
    {"int", ValueKind::Int},
    {"long", ValueKind::Long},
    {"double", ValueKind::Decimal},
    {"currency", ValueKind::Decimal},
    {"percent", ValueKind::Decimal},
    {"date", ValueKind::Date},
    {"datetime", ValueKind::DateTime},
    {"time", ValueKind::Time},
    {"base64", ValueKind::Binary},
    {"address", ValueKind::Compound},
    {"location", ValueKind::Compound},
    {"complexvalue", ValueKind::Json},
    {"json", ValueKind::Json},
};

// THE rule table: per kind, the type created for it and every existing column type (normalised format_type
// spelling) that can receive its values. numeric(p,s) and character varying(n) are further checked against
// the field's digits and length in typmod_problem.
struct KindRow {
    ValueKind kind;
    std::string_view created;  // "numeric" for Decimal is refined to numeric(p,s) by pg_type_for
    bool c_collation;
    bool bulk_selectable;
    std::string_view accepted[4];
};

constexpr KindRow kKinds[] = {
    {ValueKind::Id, "text", true, true, {"text", "character varying"}},
    {ValueKind::Text, "text", false, true, {"text", "character varying"}},
    {ValueKind::Boolean, "boolean", false, true, {"text", "boolean"}},
    {ValueKind::Int, "integer", false, true, {"text", "integer", "bigint", "numeric"}},
    {ValueKind::Long, "bigint", false, true, {"text", "bigint", "numeric"}},
    {ValueKind::Decimal, "numeric", false, true, {"text", "numeric"}},
    {ValueKind::Date, "date", false, true, {"text", "date"}},
    {ValueKind::DateTime, "timestamp with time zone", false, true, {"text", "timestamp with time zone"}},
    {ValueKind::Time, "time without time zone", false, true, {"text", "time without time zone"}},
    {ValueKind::MultiPicklist, "text[]", false, true, {"text", "text[]"}},
    {ValueKind::Binary, "bytea", false, false, {"text", "bytea"}},
    {ValueKind::Compound, "jsonb", false, false, {"text", "jsonb", "json"}},
    {ValueKind::Json, "jsonb", false, true, {"text", "jsonb", "json"}},
    {ValueKind::Unknown, "text", false, true, {"text"}},
};

// Digits before the decimal point an int (2147483647) and a long (9223372036854775807) can have.
constexpr long long kIntDigits = 10;
constexpr long long kLongDigits = 19;
// The largest precision numeric(p,s) takes.
constexpr long long kMaxNumericPrecision = 1000;
// Ids are always sent in their 18-character form.
constexpr long long kIdLength = 18;

ValueKind kind_of(const FieldDescribe &f) {
    const std::string type = ascii_lowercase(f.type);
    for (const SalesforceTypeRow &row : kSalesforceTypes) {
        if (row.sf_type == type) {
            return row.kind;
        }
    }
    return ValueKind::Unknown;
}

const KindRow &row_of(ValueKind kind) {
    for (const KindRow &row : kKinds) {
        if (row.kind == kind) {
            return row;
        }
    }
    return kKinds[sizeof kKinds / sizeof kKinds[0] - 1];
}

// An existing column type, normalised: base name in format_type spelling, "[]" kept, the typmod split off.
struct ExistingType {
    std::string name;  // e.g. "numeric", "character varying", "text[]"
    int mods = 0;      // how many typmod numbers were given
    long long mod[2] = {0, 0};
    bool malformed = false;
};

std::string canonical_base(const std::string &base) {
    static constexpr std::string_view kAliases[][2] = {
        {"timestamptz", "timestamp with time zone"},
        {"timestamp", "timestamp without time zone"},
        {"timetz", "time with time zone"},
        {"time", "time without time zone"},
        {"int", "integer"},
        {"int4", "integer"},
        {"int8", "bigint"},
        {"int2", "smallint"},
        {"bool", "boolean"},
        {"varchar", "character varying"},
        {"decimal", "numeric"},
        {"float8", "double precision"},
        {"float4", "real"},
        {"char", "character"},
        {"bpchar", "character"},
    };
    for (const auto &alias : kAliases) {
        if (base == alias[0]) {
            return std::string(alias[1]);
        }
    }
    return base;
}

ExistingType parse_existing(std::string_view text) {
    ExistingType out;
    std::string s = ascii_lowercase(trim_ascii_space(text));
    bool array = false;
    if (s.size() >= 2 && s.compare(s.size() - 2, 2, "[]") == 0) {
        array = true;
        s.resize(s.size() - 2);
    }
    // The typmod may sit inside the name: "timestamp(3) with time zone".
    const std::size_t open = s.find('(');
    if (open != std::string::npos) {
        const std::size_t close = s.find(')', open);
        if (close == std::string::npos) {
            out.malformed = true;
            return out;
        }
        const std::string mods = s.substr(open + 1, close - open - 1);
        s = s.substr(0, open) + s.substr(close + 1);
        long long value = 0;
        bool digit_seen = false;
        for (char c : mods + ",") {
            if (c >= '0' && c <= '9') {
                value = value * 10 + (c - '0');
                digit_seen = true;
                if (value > 1000000) {
                    out.malformed = true;
                    return out;
                }
            } else if (c == ',') {
                if (!digit_seen || out.mods == 2) {
                    out.malformed = true;
                    return out;
                }
                out.mod[out.mods++] = value;
                value = 0;
                digit_seen = false;
            } else if (!is_ascii_space(c)) {
                out.malformed = true;
                return out;
            }
        }
    }
    // Collapse runs of spaces left by the typmod cut or typed by a user.
    std::string base;
    for (char c : trim_ascii_space(s)) {
        if (is_ascii_space(c)) {
            if (!base.empty() && base.back() != ' ') {
                base += ' ';
            }
        } else {
            base += c;
        }
    }
    out.name = canonical_base(base) + (array ? "[]" : "");
    return out;
}

std::string numeric_type(long long precision, long long scale) {
    if (precision <= 0 || precision > kMaxNumericPrecision || scale < 0 || scale > precision) {
        return "numeric";
    }
    return "numeric(" + std::to_string(precision) + "," + std::to_string(scale) + ")";
}

// Why a numeric(p,s) or character varying(n) column is too small for the field's values; "" if it fits.
std::string typmod_problem(const ExistingType &t, ValueKind kind, const FieldDescribe &f) {
    if (t.mods == 0) {
        return "";
    }
    if (t.name == "numeric") {
        const long long p = t.mod[0];
        const long long s = t.mods == 2 ? t.mod[1] : 0;
        const long long whole = p - s;
        switch (kind) {
            case ValueKind::Int:
                return whole >= kIntDigits
                           ? ""
                           : "integers need " + std::to_string(kIntDigits) + " digits before the point";
            case ValueKind::Long:
                return whole >= kLongDigits
                           ? ""
                           : "longs need " + std::to_string(kLongDigits) + " digits before the point";
            case ValueKind::Decimal:
                if (f.precision <= 0) {
                    return "the field's precision is unknown";
                }
                if (s < f.scale || whole < f.precision - f.scale) {
                    return "the field has precision " + std::to_string(f.precision) + " and scale " +
                           std::to_string(f.scale);
                }
                return "";
            default:
                return "";
        }
    }
    if (t.name == "character varying") {
        const long long n = t.mod[0];
        if (kind == ValueKind::Id) {
            return n >= kIdLength ? "" : "ids have 18 characters";
        }
        if (f.length <= 0) {
            return "the field's length is unknown";
        }
        return f.length <= n ? "" : "the field holds up to " + std::to_string(f.length) + " characters";
    }
    return "";
}

}  // namespace

namespace {

std::string mapped_or_text(const FieldDescribe &f) {
    const std::string mapped = pg_type_for(f).sql;
    return mapped == "text" ? mapped : mapped + " or text";
}

}  // namespace

std::string PgColumnType::ddl() const {
    return collation.empty() ? sql : sql + " COLLATE \"" + collation + "\"";
}

PgColumnType pg_type_for(const FieldDescribe &f) {
    const ValueKind kind = kind_of(f);
    const KindRow &row = row_of(kind);
    PgColumnType t;
    t.sql = kind == ValueKind::Decimal ? numeric_type(f.precision, f.scale) : std::string(row.created);
    t.collation = row.c_collation ? "C" : "";
    t.is_array = kind == ValueKind::MultiPicklist;
    t.compound = kind == ValueKind::Compound;
    t.bulk_selectable = row.bulk_selectable;
    t.known_type = kind != ValueKind::Unknown;
    return t;
}

bool pg_type_accepts(const std::string &existing_pg_type, const FieldDescribe &f, std::string *why) {
    const ValueKind kind = kind_of(f);
    const KindRow &row = row_of(kind);
    const ExistingType existing = parse_existing(existing_pg_type);
    const auto refuse = [&](const std::string &reason) {
        if (why != nullptr) {
            *why = "a column of type " + quote_for_message(existing_pg_type) +
                   " cannot receive the values of " + f.type + " field " + quote_for_message(f.name) +
                   (reason.empty() ? "" : " (" + reason + ")") + "; " + mapped_or_text(f) + " would";
        }
        return false;
    };
    if (existing.malformed) {
        return refuse("unreadable type");
    }
    bool listed = false;
    for (std::string_view accepted : row.accepted) {
        if (!accepted.empty() && accepted == existing.name) {
            listed = true;
            break;
        }
    }
    if (!listed) {
        return refuse("");
    }
    const std::string problem = typmod_problem(existing, kind, f);
    if (!problem.empty()) {
        return refuse(problem);
    }
    return true;
}

}  // namespace sfb
