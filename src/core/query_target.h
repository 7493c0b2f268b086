#include "core/core_only.h"
#pragma once

// What sf_bulk_query loads into (docs/soql-and-rest.md §3.3): the columns a SOQL select list becomes, typed
// by the one type map (type_map.h) from the object's describe, the table to create when the target does not
// exist, and the checks of a target that does. Pure: the describes come in, errors go out as text, so the
// rules are unit-tested without an org or a database.
#include "core/describe.h"
#include "core/soql_select.h"
#include "core/type_map.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sfb {

enum class LoadMode { Append, Replace, Merge };
std::string_view to_string(LoadMode mode);  // "append", "replace", "merge"
// Exact lower-case names, as the other closed options of the SQL functions. Throws InvalidParameter.
LoadMode parse_load_mode(std::string_view name);

struct QueryColumn {
    std::string path;    // as written in the SOQL: "Owner.Email"
    std::string column;  // soql_column_name(path): "owner_email"
    // The leaf field; nullopt when the path was not resolved (no describe asked: validate => false; or a
    // path through a polymorphic relationship, whose pseudo-object Salesforce does not describe).
    std::optional<FieldDescribe> field;
    PgColumnType type;  // pg_type_for(field); text when the field is not known
};

struct QueryColumns {
    std::string object;  // the describe's spelling of the FROM object (as written without a describe)
    std::vector<QueryColumn> columns;
    bool selects_id = false;  // the root object's Id is selected: the created table's primary key
};

// The columns of `select`. Without `root` (no describe) every column is text and nothing is checked. With
// it, throws sfb::Error(InvalidParameter) for an object that cannot be queried, a field the describe does not
// have (with the closest names), a relationship path that does not resolve (resolve_field_path's message),
// and a field Bulk API 2.0 query does not return (compound address/location, base64). `lookup` gives the
// describes of objects a relationship path reaches; it may fetch them when asked.
QueryColumns plan_query_columns(const SoqlSelect &select, const ObjectDescribe *root,
                                const DescribeLookup &lookup);

// CREATE TABLE for a target that does not exist: one column per selected field in select order, the mapped
// type (collation included), and PRIMARY KEY (id) when Id is selected. `qualified_table` is already quoted.
std::string create_table_statement(const QueryColumns &plan, const std::string &qualified_table);

// An existing target's column, as the catalog tells it.
struct TargetColumn {
    std::string name;
    std::string pg_type;  // format_type with typmod: "numeric(18,2)", "text[]"
    bool generated = false;
    bool identity_always = false;
};

struct TargetFacts {
    std::string table;  // for messages: "crm.accounts"
    std::vector<TargetColumn> columns;
    bool id_is_unique = false;  // a unique index or constraint on exactly (id), without a predicate
};

// Every problem of loading `plan` into an existing table with `mode`, each a sentence naming the column and
// field: a selected field without a column, a column that cannot take the field's values (pg_type_accepts),
// a generated or GENERATED ALWAYS identity column, a text[] column for a field that is not a multipicklist
// (and the reverse), and for merge: no id column selected, or no unique key on id.
std::vector<std::string> check_query_target(const QueryColumns &plan, const TargetFacts &target,
                                            LoadMode mode);

}  // namespace sfb
