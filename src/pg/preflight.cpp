#include "core/describe.h"
#include "core/error.h"
#include "core/ingest_preflight.h"

#include "preflight.h"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

#include "backend_call.h"
#include "describe_cache.h"
#include "guard.h"

#include <map>
#include <string>
#include <vector>

namespace sfb::pg {

namespace {

SourceKind kind_of(Oid type) {
    switch (type) {
        case TEXTOID:
        case VARCHAROID:
        case BPCHAROID:
        case NAMEOID:
            return SourceKind::Text;
        case BOOLOID:
            return SourceKind::Boolean;
        case INT2OID:
        case INT4OID:
        case INT8OID:
        case OIDOID:
            return SourceKind::Integer;
        case NUMERICOID:
            return SourceKind::Numeric;
        case FLOAT4OID:
        case FLOAT8OID:
            return SourceKind::Float;
        case DATEOID:
            return SourceKind::Date;
        case TIMESTAMPOID:
            return SourceKind::Timestamp;
        case TIMESTAMPTZOID:
            return SourceKind::TimestampTz;
        case TIMEOID:
            return SourceKind::Time;
        default:
            return SourceKind::Other;
    }
}

// What the catalog says of one sent column: plain data, filled by PostgreSQL calls that may raise.
struct ColumnFacts {
    const char *name;
    char *pg_type;  // palloc'd
    Oid base;
    Oid element_base;  // InvalidOid unless an array
    int32 typmod;
};

// The sent columns as the pre-flight sees them. The catalog is read first, into plain data (an ERROR there
// jumps over no C++ object); the C++ values are built after.
std::vector<SourceColumn> source_columns(TupleDesc desc, const bool *is_key) {
    int count = 0;
    ColumnFacts *facts = pg_call([desc, is_key, &count] {
        auto *out = static_cast<ColumnFacts *>(palloc0(sizeof(ColumnFacts) * Max(desc->natts, 1)));
        for (int i = 0; i < desc->natts; ++i) {
            Form_pg_attribute attr = TupleDescAttr(desc, i);
            if (attr->attisdropped || is_key[i])
                continue;
            ColumnFacts &f = out[count++];
            f.name = NameStr(attr->attname);
            f.pg_type = format_type_with_typemod(attr->atttypid, attr->atttypmod);
            f.base = getBaseType(attr->atttypid);
            Oid element = get_element_type(f.base);
            f.element_base = OidIsValid(element) ? getBaseType(element) : InvalidOid;
            f.typmod = attr->atttypmod;
        }
        return out;
    });
    std::vector<SourceColumn> columns;
    for (int i = 0; i < count; ++i) {
        const ColumnFacts &f = facts[i];
        SourceColumn column;
        column.name = f.name;
        column.pg_type = f.pg_type;
        column.kind = kind_of(f.base);
        if (OidIsValid(f.element_base) && kind_of(f.element_base) == SourceKind::Text)
            column.kind = SourceKind::TextArray;
        if (f.base == NUMERICOID && f.typmod >= VARHDRSZ) {
            int32 typmod = f.typmod - VARHDRSZ;
            column.numeric_precision = (typmod >> 16) & 0xffff;
            column.numeric_scale = ((typmod & 0x7ff) ^ 1024) - 1024;
        }
        columns.push_back(std::move(column));
    }
    return columns;
}

void warn(const std::string &message) {
    pg_call([&message] { ereport(WARNING, (errmsg("%s", message.c_str()))); });
}

}  // namespace

void preflight_ingest_call(const char *function, const char *server_name, Operation operation,
                           const std::string &object, const std::optional<std::string> &external_id,
                           TupleDesc desc, const bool *is_key) {
    std::vector<SourceColumn> columns = source_columns(desc, is_key);
    OrgCall org = org_for_call(function, server_name);
    CallDescribes describes(org, function);
    const ObjectDescribe &target = describes.get(object);
    for (const std::string &name : preflight_referenced_objects(target, columns))
        describes.get(name);
    DescribeLookup lookup = describes.known();
    PreflightReport report = preflight_ingest(operation, target, external_id, columns, lookup);
    for (const std::string &warning : report.warnings)
        warn(std::string(function) + ": " + warning);
    if (report.errors.empty())
        return;
    std::string detail;
    if (report.errors.size() > 1) {
        detail = "Also: ";
        for (std::size_t i = 1; i < report.errors.size(); ++i)
            detail += (i > 1 ? "; " : "") + report.errors[i];
        detail += ".";
    }
    raise_error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(function) + ": " + report.errors.front(), detail,
                "Checked against Salesforce's describe of " + target.name +
                    " (sf_bulk_describe shows it); validate => false skips the check.");
}

}  // namespace sfb::pg
