#include "core/query_target.h"

#include "core/error.h"
#include "core/ingest_preflight.h"  // closest_names
#include "core/sf_names.h"
#include "core/text_util.h"

namespace sfb {

namespace {

constexpr std::string_view kLoadModeNames[] = {"append", "replace", "merge"};

// Column names from soql_column_name are lower-case letters, digits and '_' (the field-name grammar), so
// double quotes never need escaping; they are always written because a field such as Order or Group is a
// reserved word in SQL.
std::string quoted_column(const std::string &column) {
    return "\"" + column + "\"";
}

std::vector<std::string> field_names(const ObjectDescribe &object) {
    std::vector<std::string> names;
    names.reserve(object.fields.size());
    for (const FieldDescribe &f : object.fields)
        names.push_back(f.name);
    return names;
}

// Whether the path goes through a relationship with several targets before its leaf. Such a path ends on
// the Name pseudo-object, which Salesforce does not describe: the field is left to Salesforce to judge.
bool through_polymorphic(const ObjectDescribe &root, const std::vector<std::string> &parts,
                         const DescribeLookup &lookup) {
    const ObjectDescribe *current = &root;
    for (std::size_t i = 0; i + 1 < parts.size() && current != nullptr; ++i) {
        const FieldDescribe *rel = current->find_relationship(parts[i]);
        if (rel == nullptr)
            return false;
        if (rel->reference_to.size() > 1)
            return true;
        if (rel->reference_to.empty() || !lookup)
            return false;
        current = lookup(rel->reference_to.front());
    }
    return false;
}

QueryColumn unresolved(const SoqlField &field) {
    QueryColumn column;
    column.path = field.path;
    column.column = field.column;
    column.type.sql = "text";
    return column;
}

}  // namespace

std::string_view to_string(LoadMode mode) {
    return kLoadModeNames[static_cast<int>(mode)];
}

LoadMode parse_load_mode(std::string_view name) {
    for (int i = 0; i < 3; ++i) {
        if (name == kLoadModeNames[i])
            return static_cast<LoadMode>(i);
    }
    throw Error(ErrorKind::InvalidParameter, "invalid value for mode: " + quote_for_message(name) +
                                                 "; use 'append', 'replace' or 'merge'");
}

QueryColumns plan_query_columns(const SoqlSelect &select, const ObjectDescribe *root,
                                const DescribeLookup &lookup) {
    QueryColumns plan;
    plan.object = root != nullptr ? root->name : select.object;
    if (root != nullptr && !root->queryable)
        throw Error(ErrorKind::InvalidParameter,
                    root->name + " cannot be queried (its describe says queryable: false)");
    for (const SoqlField &field : select.fields) {
        if (field.parts.size() == 1 && ascii_iequals(field.parts.front(), "Id"))
            plan.selects_id = true;
        if (root == nullptr) {
            plan.columns.push_back(unresolved(field));
            continue;
        }
        if (field.parts.size() == 1 && root->find_field(field.parts.front()) == nullptr) {
            std::string message = root->name + " has no field " + quote_for_message(field.path);
            std::vector<std::string> near = closest_names(field.path, field_names(*root));
            if (!near.empty()) {
                message += "; did you mean ";
                for (std::size_t i = 0; i < near.size(); ++i)
                    message += (i == 0 ? "" : i + 1 == near.size() ? " or " : ", ") + near[i];
                message += "?";
            }
            throw Error(ErrorKind::InvalidParameter, message);
        }
        if (field.parts.size() > 1 && through_polymorphic(*root, field.parts, lookup)) {
            plan.columns.push_back(unresolved(field));
            continue;
        }
        ResolvedField resolved = resolve_field_path(*root, field.parts, lookup);
        QueryColumn column;
        column.path = field.path;
        column.column = field.column;
        column.type = pg_type_for(resolved.field);
        if (!column.type.bulk_selectable) {
            std::string message = "Bulk API 2.0 query jobs do not return " + resolved.field.type + " field " +
                                  resolved.object + "." + resolved.field.name;
            if (column.type.compound)
                message += "; select its component fields instead";
            throw Error(ErrorKind::InvalidParameter, message);
        }
        column.field = std::move(resolved.field);
        plan.columns.push_back(std::move(column));
    }
    return plan;
}

std::string create_table_statement(const QueryColumns &plan, const std::string &qualified_table) {
    std::string sql = "CREATE TABLE " + qualified_table + " (";
    for (std::size_t i = 0; i < plan.columns.size(); ++i) {
        const QueryColumn &c = plan.columns[i];
        sql += (i == 0 ? "" : ", ") + quoted_column(c.column) + " " + c.type.ddl();
    }
    if (plan.selects_id)
        sql += ", PRIMARY KEY (\"id\")";
    return sql + ")";
}

std::vector<std::string> check_query_target(const QueryColumns &plan, const TargetFacts &target,
                                            LoadMode mode) {
    std::vector<std::string> problems;
    bool id_selected = false;
    for (const QueryColumn &c : plan.columns) {
        if (c.column == "id")
            id_selected = true;
        const TargetColumn *found = nullptr;
        for (const TargetColumn &t : target.columns) {
            if (t.name == c.column) {
                found = &t;
                break;
            }
        }
        if (found == nullptr) {
            problems.push_back("field " + c.path + " has no column " + quote_for_message(c.column) + " in " +
                               target.table);
            continue;
        }
        if (found->generated || found->identity_always) {
            problems.push_back("column " + quote_for_message(c.column) + " of " + target.table + " is " +
                               (found->generated ? "a generated column" : "GENERATED ALWAYS AS IDENTITY") +
                               "; field " + c.path + " cannot be loaded into it");
            continue;
        }
        std::string why;
        if (c.field && !pg_type_accepts(found->pg_type, *c.field, &why))
            problems.push_back("column " + quote_for_message(c.column) + " of " + target.table + ": " + why);
    }
    if (mode == LoadMode::Merge) {
        if (!id_selected)
            problems.push_back("mode 'merge' matches rows by id: select Id");
        else if (!target.id_is_unique)
            problems.push_back("mode 'merge' needs a primary key or unique index on exactly (id) of " +
                               target.table);
    }
    return problems;
}

}  // namespace sfb
