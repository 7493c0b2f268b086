// What a salesforce foreign table reads, resolved against the org: its server and object, and for each
// column the Salesforce field behind it with the describe flags the pushdown consults (filterable,
// sortable, caseSensitive) and the kind of literal a comparison with it needs. Built from the one describe
// cache (describe_cache.h) and the one type map (core/type_map.h); the planner, the scan and IMPORT FOREIGN
// SCHEMA read tables only through here.
//
// The structs are plain data in palloc'd memory, so the planner code that walks PostgreSQL's nodes can hold
// them across calls that raise ERROR.
#pragma once

#include "pg_headers.h"

extern "C" {
#include "nodes/parsenodes.h"
}

namespace sfb::pg {

// The SOQL literal a column's values are compared with; Unsupported columns are never pushed down.
enum SfValueKind : int {
    kSfUnsupported = 0,
    kSfText,      // string-like fields: comparisons fold case in SOQL (pushed with a local recheck)
    kSfId,        // id / reference: 18-character ids
    kSfNumber,    // int, double, currency, percent
    kSfBoolean,   // checkbox: never null in Salesforce
    kSfDate,      // date literal 2024-01-31
    kSfDateTime,  // datetime literal in UTC 2024-01-31T12:00:00.000Z
};

struct SfColumn {
    char *field;  // the field's API name as describe spells it; nullptr for a dropped column
    int kind;     // SfValueKind
    bool filterable;
    bool sortable;
    bool case_sensitive;
    bool unique_key;       // Id, or an idLookup field that is unique or an external id: at most one row
    bool bulk_selectable;  // false for compound and base64 fields
    bool is_array;         // text[] column of a multipicklist: "a;b" is split
    Oid type_oid;          // the column's type, for the input function
    int32 type_mod;
};

struct SfTable {
    Oid relid;
    Oid serverid;
    char *server_name;
    char *api_version;  // "62.0"
    char *object;       // the sObject's API name as describe spells it
    int engine;         // ScanEngine of the table (or its server): 0 auto, 1 rest, 2 bulk
    int natts;
    SfColumn *columns;  // columns[attno - 1]
    double row_count;   // from the record-count API, or -1 when Salesforce did not say
};

// Reads the foreign table `relid` against the describe of its object (cached; fetched when cold) for the
// current user. Raises ERROR naming the table and column for an unknown object or field (with the closest
// names describe offers) and for a column type that cannot hold the field's values.
SfTable *sf_table_for(Oid relid, bool with_row_count);

// IMPORT FOREIGN SCHEMA salesforce [LIMIT TO | EXCEPT (...)] FROM SERVER s INTO local (fdw_import.cpp): one
// CREATE FOREIGN TABLE per queryable object.
List *sf_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverid);

}  // namespace sfb::pg
