// PostgreSQL values as Salesforce wants them (docs/bulk-api-2.md §8, the README's type table). The
// PostgreSQL
// half (detoasting, output functions, breaking timestamps down) runs here in C-style code that may raise
// ERRORs and owns no C++ objects; the spelling of dates and numbers is core's (sf_values.h).
#pragma once

#include "core/sf_values.h"

#include "pg_headers.h"

extern "C" {
#include "access/tupdesc.h"
#include "executor/tuptable.h"
}

namespace sfb::pg {

enum class FieldKind : uint8 {
    Null,      // SQL NULL: empty cell or #N/A, per the job's `nulls`
    Text,      // send `text` as is
    Number,    // a float's output, to be rewritten as a plain decimal
    Date,      // `civil` holds the date
    DateTime,  // `civil` holds the UTC date-time
    Time,      // `civil` holds the time of day
};

struct FieldValue {
    FieldKind kind;
    const char *text;  // Text / Number: palloc'd or pointing into the tuple; not NUL-terminated
    int length;
    CivilDateTime civil;
};

// How each column of a result is turned into FieldValues; decided once per query.
struct ColumnFormat;

// Builds the formats for every column of `desc` (palloc'd in the current memory context). Columns flagged in
// `as_postgres_text` (may be null) keep PostgreSQL's own text form: source keys, which must join back to
// their table, not Salesforce spellings.
ColumnFormat *plan_column_formats(TupleDesc desc, const bool *as_postgres_text);

// Fills `out[column]` for one row of `natts` columns, given as the executor's slot holds them (values and
// null flags, e.g. after slot_getallattrs). Texts it produces are allocated in the current memory context
// or point into the values. May raise an ERROR (a value Salesforce cannot take, out of memory); call it
// only through the inner guard or from frames without C++ objects.
void format_row(const ColumnFormat *formats, int natts, const Datum *values, const bool *nulls,
                FieldValue *out);

}  // namespace sfb::pg
