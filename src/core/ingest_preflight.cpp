#include "core/ingest_preflight.h"

#include "core/sf_names.h"
#include "core/text_util.h"

#include <algorithm>
#include <cstddef>
#include <set>
#include <string_view>
#include <utility>

namespace sfb {

namespace {

std::string quoted(std::string_view name) {
    return quote_for_message(name);
}

std::string join(const std::vector<std::string> &items, const char *separator = ", ") {
    std::string out;
    for (const std::string &item : items) {
        if (!out.empty())
            out += separator;
        out += item;
    }
    return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above = row[j];
            std::size_t substitution = diagonal + (ascii_lower(a[i - 1]) == ascii_lower(b[j - 1]) ? 0 : 1);
            row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string did_you_mean(const std::string &name, const std::vector<std::string> &candidates) {
    std::vector<std::string> close = closest_names(name, candidates);
    return close.empty() ? std::string() : " (did you mean " + join(close, ", ") + "?)";
}

std::vector<std::string> field_names(const ObjectDescribe &object) {
    std::vector<std::string> names;
    for (const FieldDescribe &f : object.fields)
        names.push_back(f.name);
    return names;
}

std::vector<std::string> relationship_names(const ObjectDescribe &object) {
    std::vector<std::string> names;
    for (const FieldDescribe &f : object.fields)
        if (!f.relationship_name.empty())
            names.push_back(f.relationship_name);
    return names;
}

// Fields a record can be found by when a relationship column names it: external ids and idLookup fields.
std::vector<std::string> identifying_fields(const ObjectDescribe &object) {
    std::vector<std::string> names;
    for (const FieldDescribe &f : object.fields)
        if (f.external_id || f.id_lookup)
            names.push_back(f.name);
    return names;
}

bool is_type(const FieldDescribe &f, std::initializer_list<std::string_view> types) {
    return std::any_of(types.begin(), types.end(),
                       [&](std::string_view t) { return ascii_iequals(f.type, t); });
}

bool is_textual(const FieldDescribe &f) {
    return is_type(f, {"string", "textarea", "email", "phone", "url", "picklist", "combobox",
                       "encryptedstring", "anyType"});
}

bool is_compound(const FieldDescribe &f) {
    return is_type(f, {"address", "location"});
}

// The column a relationship column reaches: "Account.External_Id__c" -> ("Account", "External_Id__c");
// "Owner:User.Username" -> the relationship and the object named before the dot, either order.
struct RelationshipColumn {
    std::string relationship;
    std::string object;  // "" unless named in the X:Y form
    std::string field;
};

std::optional<RelationshipColumn> split_relationship(const std::string &column) {
    std::size_t dot = column.find('.');
    if (dot == std::string::npos)
        return std::nullopt;
    RelationshipColumn out;
    out.field = column.substr(dot + 1);
    std::string head = column.substr(0, dot);
    std::size_t colon = head.find(':');
    if (colon == std::string::npos) {
        out.relationship = head;
    } else {
        out.relationship = head.substr(0, colon);
        out.object = head.substr(colon + 1);
    }
    return out;
}

// The relationship column's reference field and the object it points to, when both can be found.
struct ResolvedRelationship {
    const FieldDescribe *reference = nullptr;
    std::string target;
    std::string field;
};

std::optional<ResolvedRelationship> resolve_relationship(const ObjectDescribe &object,
                                                         const RelationshipColumn &rel,
                                                         std::string *problem) {
    // "User:Owner.Username": the two names before the dot may come in either order; the one that resolves
    // wins.
    std::vector<std::pair<std::string, std::string>> readings{{rel.relationship, rel.object}};
    if (!rel.object.empty())
        readings.emplace_back(rel.object, rel.relationship);
    const FieldDescribe *first_found = nullptr;
    std::string first_target;
    for (const auto &[relationship, target_name] : readings) {
        const FieldDescribe *reference = object.find_relationship(relationship);
        if (reference == nullptr)
            continue;
        ResolvedRelationship out;
        out.reference = reference;
        out.field = rel.field;
        if (target_name.empty()) {
            if (reference->reference_to.size() == 1) {
                out.target = reference->reference_to.front();
                return out;
            }
            std::vector<std::string> forms;
            for (const std::string &t : reference->reference_to)
                forms.push_back("\"" + t + ":" + reference->relationship_name + "." + rel.field + "\"");
            *problem = object.name + "." + reference->name + " points to several objects (" +
                       join(reference->reference_to) + "): name the one meant, as " + join(forms, " or ");
            return std::nullopt;
        }
        auto target = std::find_if(reference->reference_to.begin(), reference->reference_to.end(),
                                   [&](const std::string &t) { return ascii_iequals(t, target_name); });
        if (target != reference->reference_to.end()) {
            out.target = *target;
            return out;
        }
        if (first_found == nullptr) {
            first_found = reference;
            first_target = target_name;
        }
    }
    if (first_found != nullptr)
        *problem = object.name + "." + first_found->name + " does not point to " + quoted(first_target) +
                   " (it points to " + join(first_found->reference_to) + ")";
    else
        *problem = object.name + " has no relationship " + quoted(rel.relationship) +
                   did_you_mean(rel.relationship, relationship_names(object));
    return std::nullopt;
}

const char *kind_text(SourceKind kind) {
    switch (kind) {
        case SourceKind::Text:
            return "a text";
        case SourceKind::Boolean:
            return "a boolean";
        case SourceKind::Integer:
            return "an integer";
        case SourceKind::Numeric:
            return "a numeric";
        case SourceKind::Float:
            return "a floating-point";
        case SourceKind::Date:
            return "a date";
        case SourceKind::Timestamp:
            return "a timestamp";
        case SourceKind::TimestampTz:
            return "a timestamptz";
        case SourceKind::Time:
            return "a time";
        case SourceKind::TextArray:
            return "an array";
        case SourceKind::Other:
            break;
    }
    return "a";
}

// Whether values of the column can go into the field: "" (yes), or why not; lossy conversions add a warning.
std::string type_problem(const SourceColumn &column, const FieldDescribe &field, const std::string &where,
                         std::vector<std::string> &warnings) {
    SourceKind k = column.kind;
    // "an int field", "a date field"
    bool vowel =
        !field.type.empty() && std::string_view("aeiouAEIOU").find(field.type[0]) != std::string_view::npos;
    std::string what = "column " + quoted(column.name) + " is " + kind_text(k) + " column (" +
                       column.pg_type + ") but " + where + " is " + (vowel ? "an " : "a ") + field.type +
                       " field";
    if (k == SourceKind::Text)
        return {};  // Salesforce parses text itself; nothing to know in advance
    if (is_type(field, {"id", "reference"}))
        return what + ": send record ids as text";
    if (k == SourceKind::TextArray)
        return is_type(field, {"multipicklist"}) ? std::string()
                                                 : what + ": arrays go only to multipicklist fields";
    if (is_type(field, {"multipicklist"}))
        return k == SourceKind::Other ? std::string() : what + ": send a text[] or ';'-separated text";
    if (is_textual(field))
        return {};  // the value's text form is what arrives
    if (is_type(field, {"boolean"}))
        return k == SourceKind::Boolean ? std::string() : what + ": send a boolean";
    bool numeric_field = is_type(field, {"double", "currency", "percent"});
    bool integer_field = is_type(field, {"int", "long"});
    if (numeric_field || integer_field) {
        if (k != SourceKind::Integer && k != SourceKind::Numeric && k != SourceKind::Float)
            return what + ": send a number";
        long long scale = integer_field ? 0 : field.scale;
        if (k == SourceKind::Float && integer_field)
            warnings.push_back("column " + quoted(column.name) + " (" + column.pg_type + ") goes to " +
                               where + ", a whole-number field: Salesforce refuses values with decimals");
        if (k == SourceKind::Numeric && column.numeric_scale > scale)
            warnings.push_back("column " + quoted(column.name) + " (" + column.pg_type + ") has " +
                               std::to_string(column.numeric_scale) + " decimal places but " + where +
                               " keeps " + std::to_string(scale) +
                               (integer_field ? ": Salesforce refuses values with decimals"
                                              : ": Salesforce rounds the values"));
        return {};
    }
    if (is_type(field, {"date"})) {
        if (k == SourceKind::Date)
            return {};
        if (k == SourceKind::Timestamp || k == SourceKind::TimestampTz)
            return what + ": cast it to date (the time of day would have to be dropped)";
        return what + ": send a date";
    }
    if (is_type(field, {"datetime"})) {
        if (k == SourceKind::TimestampTz || k == SourceKind::Date)
            return {};
        if (k == SourceKind::Timestamp) {
            warnings.push_back("column " + quoted(column.name) +
                               " is a timestamp without time zone: its values are sent as UTC to " + where);
            return {};
        }
        return what + ": send a timestamptz";
    }
    if (is_type(field, {"time"}))
        return k == SourceKind::Time ? std::string() : what + ": send a time";
    if (k == SourceKind::Other)
        return {};
    return {};  // a type this check does not know: Salesforce decides
}

enum class Write { Create, Update, Either, None };

Write write_of(Operation op) {
    switch (op) {
        case Operation::Insert:
            return Write::Create;
        case Operation::Update:
            return Write::Update;
        case Operation::Upsert:
            return Write::Either;
        default:
            return Write::None;
    }
}

// Whether the operation may set the field; "" or why not. Upsert: a field settable one way only warns.
std::string settable_problem(Operation op, const FieldDescribe &field, const std::string &where,
                             std::vector<std::string> &warnings) {
    switch (write_of(op)) {
        case Write::Create:
            return field.createable ? std::string()
                                    : where +
                                          " cannot be set on insert (it is not createable for the server's "
                                          "Salesforce user)";
        case Write::Update:
            return field.updateable ? std::string()
                                    : where +
                                          " cannot be changed by update (it is not updateable for the "
                                          "server's Salesforce user)";
        case Write::Either:
            if (!field.createable && !field.updateable)
                return where + " can be neither set nor changed by the server's Salesforce user";
            if (!field.createable)
                warnings.push_back(where + " is not createable: records the upsert creates do not get it");
            else if (!field.updateable)
                warnings.push_back(where + " is not updateable: records the upsert updates keep theirs");
            return {};
        case Write::None:
            break;
    }
    return {};
}

}  // namespace

std::vector<std::string> closest_names(const std::string &name, const std::vector<std::string> &candidates,
                                       std::size_t limit) {
    std::size_t allowed = std::max<std::size_t>(2, name.size() / 3);
    std::vector<std::pair<std::size_t, std::string>> scored;
    for (const std::string &candidate : candidates) {
        std::size_t d = edit_distance(name, candidate);
        if (d <= allowed)
            scored.emplace_back(d, candidate);
    }
    std::stable_sort(scored.begin(), scored.end(),
                     [](const auto &a, const auto &b) { return a.first < b.first; });
    std::vector<std::string> out;
    for (const auto &entry : scored) {
        if (out.size() == limit)
            break;
        if (std::none_of(out.begin(), out.end(),
                         [&](const std::string &o) { return ascii_iequals(o, entry.second); }))
            out.push_back(entry.second);
    }
    return out;
}

std::vector<std::string> preflight_referenced_objects(const ObjectDescribe &object,
                                                      const std::vector<SourceColumn> &columns) {
    std::vector<std::string> out;
    for (const SourceColumn &column : columns) {
        std::optional<RelationshipColumn> rel = split_relationship(column.name);
        if (!rel)
            continue;
        std::string ignored;
        std::optional<ResolvedRelationship> resolved = resolve_relationship(object, *rel, &ignored);
        if (resolved && std::none_of(out.begin(), out.end(), [&](const std::string &o) {
                return ascii_iequals(o, resolved->target);
            }))
            out.push_back(resolved->target);
    }
    return out;
}

PreflightReport preflight_ingest(Operation operation, const ObjectDescribe &object,
                                 const std::optional<std::string> &external_id,
                                 const std::vector<SourceColumn> &columns, const DescribeLookup &lookup) {
    PreflightReport report;
    std::vector<std::string> &errors = report.errors;
    std::vector<std::string> &warnings = report.warnings;
    const std::string op = std::string(to_string(operation));

    // The object.
    if ((operation == Operation::Insert || operation == Operation::Upsert) && !object.createable)
        errors.push_back(object.name +
                         " records cannot be created by the server's Salesforce user (the object "
                         "is not createable)");
    if ((operation == Operation::Update || operation == Operation::Upsert) && !object.updateable)
        errors.push_back(object.name +
                         " records cannot be updated by the server's Salesforce user (the object "
                         "is not updateable)");
    if ((operation == Operation::Delete || operation == Operation::HardDelete) && !object.deletable)
        errors.push_back(object.name +
                         " records cannot be deleted by the server's Salesforce user (the object "
                         "is not deletable)");

    // upsert matches on an external id (or Id, an idLookup field).
    if (operation == Operation::Upsert && external_id) {
        const FieldDescribe *key = object.find_field(*external_id);
        if (key == nullptr)
            errors.push_back("external_id " + quoted(*external_id) + " is not a field of " + object.name +
                             did_you_mean(*external_id, field_names(object)));
        else if (!key->external_id && !key->id_lookup)
            errors.push_back(
                "external_id " + quoted(*external_id) + " is not an external id field of " + object.name +
                " (its external ids and idLookup fields: " + join(identifying_fields(object)) + ")");
    }

    // The columns.
    std::set<std::string> covered;  // lower-case names of the fields the columns set
    for (const SourceColumn &column : columns) {
        if (std::optional<RelationshipColumn> rel = split_relationship(column.name)) {
            std::string problem;
            std::optional<ResolvedRelationship> resolved = resolve_relationship(object, *rel, &problem);
            if (!resolved) {
                errors.push_back("column " + quoted(column.name) + ": " + problem);
                continue;
            }
            const FieldDescribe &reference = *resolved->reference;
            covered.insert(ascii_lowercase(reference.name));
            std::string where = object.name + "." + reference.name;
            if (std::string p = settable_problem(operation, reference, where, warnings); !p.empty())
                errors.push_back("column " + quoted(column.name) + ": " + p);
            const ObjectDescribe *target = lookup ? lookup(resolved->target) : nullptr;
            if (target == nullptr) {
                errors.push_back("column " + quoted(column.name) + ": the describe of " + resolved->target +
                                 " is not available");
                continue;
            }
            const FieldDescribe *key = target->find_field(resolved->field);
            if (key == nullptr)
                errors.push_back("column " + quoted(column.name) + ": " + target->name + " has no field " +
                                 quoted(resolved->field) +
                                 did_you_mean(resolved->field, field_names(*target)));
            else if (!key->external_id && !key->id_lookup)
                errors.push_back("column " + quoted(column.name) + ": " + target->name + "." + key->name +
                                 " cannot find the " + target->name +
                                 " to link: it is not an external id or idLookup field (those of " +
                                 target->name + ": " + join(identifying_fields(*target)) + ")");
            else if (std::string p = type_problem(column, *key, target->name + "." + key->name, warnings);
                     !p.empty())
                errors.push_back(p);
            continue;
        }

        const FieldDescribe *field = object.find_field(column.name);
        if (field == nullptr) {
            errors.push_back(object.name + " has no field " + quoted(column.name) +
                             did_you_mean(column.name, field_names(object)));
            continue;
        }
        covered.insert(ascii_lowercase(field->name));
        std::string where = object.name + "." + field->name;
        if (ascii_iequals(field->name, "Id")) {
            if (operation == Operation::Insert)
                errors.push_back(
                    "insert cannot send Id: Salesforce assigns it (update or upsert change records "
                    "that exist)");
            else if (std::string p = type_problem(column, *field, where, warnings); !p.empty())
                errors.push_back(p);
            continue;
        }
        if (is_compound(*field)) {
            std::vector<std::string> parts;
            for (const FieldDescribe &f : object.fields)
                if (ascii_iequals(f.compound_field_name, field->name))
                    parts.push_back(f.name);
            errors.push_back(where + " is a compound field and cannot be written; send its parts" +
                             (parts.empty() ? std::string() : " (" + join(parts) + ")") + " instead");
            continue;
        }
        bool is_key =
            operation == Operation::Upsert && external_id && ascii_iequals(*external_id, field->name);
        if (!is_key)
            if (std::string p = settable_problem(operation, *field, where, warnings); !p.empty()) {
                errors.push_back("column " + quoted(column.name) + ": " + p);
                continue;
            }
        if (std::string p = type_problem(column, *field, where, warnings); !p.empty())
            errors.push_back(p);
    }

    // Required fields: what insert must send. (Upsert is not held to it: the records it only updates need
    // none, and Salesforce refuses the new ones that lack them, row by row, in the failed results.)
    if (operation == Operation::Insert) {
        std::vector<std::string> missing;
        for (const FieldDescribe &f : object.fields)
            if (f.createable && !f.nillable && !f.defaulted_on_create && !is_type(f, {"boolean"}) &&
                !covered.count(ascii_lowercase(f.name)))
                missing.push_back(f.name);
        if (!missing.empty())
            errors.push_back(op + " does not send the required field" + (missing.size() > 1 ? "s" : "") +
                             " of " + object.name + ": " + join(missing));
    }
    return report;
}

}  // namespace sfb
