// THE mapping from Salesforce field types to PostgreSQL column types (docs/soql-and-rest.md §3.3), shared by
// sf_bulk_query's table creation, IMPORT FOREIGN SCHEMA and sync, so that REST and Bulk rows land in the same
// types (docs/soql-and-rest.md §7 trap 21). The rule table lives in type_map.cpp, in one place, and serves
// both directions: the type to create, and whether an existing column can take a field's values.
#pragma once
#include "core/core_only.h"

#include "core/describe.h"

#include <string>

namespace sfb {

struct PgColumnType {
    // Spelled as PostgreSQL's format_type prints it ("text", "integer", "numeric(18,2)",
    // "timestamp with time zone", "time without time zone", "text[]"), so it can be compared with a
    // catalog type and used in DDL as is.
    std::string sql;
    std::string collation;        // "C" for ids and references (exact comparison); "" for the default
    bool is_array = false;        // multipicklist: the ';'-joined value split into text[]
    bool compound = false;        // address, location: read-only compound value
    bool bulk_selectable = true;  // false where Bulk API 2.0 query refuses the field (compound, base64)
    bool known_type = true;       // false for a Salesforce type this map does not know (mapped to text)

    // Column type for CREATE TABLE / CREATE FOREIGN TABLE: sql plus the COLLATE clause if any.
    std::string ddl() const;
};

// The PostgreSQL type for a field: id/reference -> text COLLATE "C"; textual types and picklists -> text;
// multipicklist -> text[]; boolean; int -> integer; long -> bigint; double/currency/percent ->
// numeric(precision,scale), or numeric when precision is 0 (or outside what numeric(p,s) takes); date;
// datetime -> timestamp with time zone; time -> time without time zone; base64 -> bytea (not selectable in
// Bulk); address/location -> jsonb (compound, not selectable in Bulk); complexvalue/json -> jsonb; anyType
// and the rare reference-like types -> text; an unknown type -> text with known_type = false.
PgColumnType pg_type_for(const FieldDescribe &f);

// Whether an existing column of type `existing_pg_type` (as format_type prints it; common aliases such as
// "timestamptz", "int4", "varchar(40)", "decimal" are understood, case-insensitively) can receive the
// field's values without loss or a session-dependent conversion. text takes everything; numeric takes any
// number, numeric(p,s) those whose digits fit; bigint takes int and long; varchar(n) takes ids (n >= 18) and
// text fields whose length fits. When false and `why` is not null, *why says what does not fit and which
// type would.
bool pg_type_accepts(const std::string &existing_pg_type, const FieldDescribe &f, std::string *why);

}  // namespace sfb
