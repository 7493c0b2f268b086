#include "core/describe.h"

#include "core/error.h"
#include "core/sf_names.h"
#include "core/text_util.h"

#include <nlohmann/json.hpp>

namespace sfb {

namespace {

using json = nlohmann::json;

// Reads members of one JSON object; `where` names it in messages ("sObject describe of \"Account\",
// fields[3] (\"Name\")").
class Members {
  public:
    Members(const json &object, std::string where) : o_(object), where_(std::move(where)) {
        if (!o_.is_object()) {
            fail("is not a JSON object");
        }
    }

    const std::string &where() const { return where_; }

    [[noreturn]] void fail(const std::string &what) const {
        throw Error(ErrorKind::ExternalService, where_ + " " + what);
    }

    // nullptr when absent or JSON null.
    const json *find(const char *key) const {
        const auto it = o_.find(key);
        if (it == o_.end() || it->is_null()) {
            return nullptr;
        }
        return &*it;
    }

    const json &required(const char *key) const {
        const json *v = find(key);
        if (v == nullptr) {
            fail(std::string("lacks the required key \"") + key + "\"");
        }
        return *v;
    }

    std::string required_string(const char *key) const { return as_string(required(key), key); }
    bool required_bool(const char *key) const { return as_bool(required(key), key); }

    void optional(const char *key, std::string &out) const {
        if (const json *v = find(key)) {
            out = as_string(*v, key);
        }
    }
    void optional(const char *key, bool &out) const {
        if (const json *v = find(key)) {
            out = as_bool(*v, key);
        }
    }
    void optional(const char *key, long long &out) const {
        if (const json *v = find(key)) {
            out = as_integer(*v, key);
        }
    }
    void optional(const char *key, std::vector<std::string> &out) const {
        if (const json *v = find(key)) {
            if (!v->is_array()) {
                wrong_type(key, "an array");
            }
            for (const json &item : *v) {
                if (!item.is_string()) {
                    wrong_type(key, "an array of strings");
                }
                out.push_back(item.get<std::string>());
            }
        }
    }

    const json &required_array(const char *key) const {
        const json &v = required(key);
        if (!v.is_array()) {
            wrong_type(key, "an array");
        }
        return v;
    }
    // nullptr when absent or null. (No shared empty json: a static with a destructor would run at exit,
    // after PostgreSQL has torn down, docs/engineering.md (a).)
    const json *optional_array(const char *key) const {
        const json *v = find(key);
        if (v != nullptr && !v->is_array()) {
            wrong_type(key, "an array");
        }
        return v;
    }

  private:
    [[noreturn]] void wrong_type(const char *key, const char *expected) const {
        fail(std::string("has \"") + key + "\" that is not " + expected);
    }
    std::string as_string(const json &v, const char *key) const {
        if (!v.is_string()) {
            wrong_type(key, "a string");
        }
        return v.get<std::string>();
    }
    bool as_bool(const json &v, const char *key) const {
        if (!v.is_boolean()) {
            wrong_type(key, "a boolean");
        }
        return v.get<bool>();
    }
    long long as_integer(const json &v, const char *key) const {
        if (v.is_number_integer()) {
            return v.get<long long>();
        }
        // Some clients and emulators print 18.0; accept a whole number in floating form.
        if (v.is_number_float()) {
            const double d = v.get<double>();
            if (d == static_cast<double>(static_cast<long long>(d)) && d >= -1e15 && d <= 1e15) {
                return static_cast<long long>(d);
            }
        }
        wrong_type(key, "an integer");
    }

    const json &o_;
    std::string where_;
};

json parse_object(std::string_view text, const char *what) {
    json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        throw Error(ErrorKind::ExternalService, std::string(what) + " answer is not a JSON object");
    }
    return j;
}

void read_summary(const Members &m, SObjectSummary &s) {
    s.name = m.required_string("name");
    s.queryable = m.required_bool("queryable");
    m.optional("label", s.label);
    m.optional("labelPlural", s.label_plural);
    m.optional("keyPrefix", s.key_prefix);
    m.optional("custom", s.custom);
    m.optional("customSetting", s.custom_setting);
    m.optional("createable", s.createable);
    m.optional("updateable", s.updateable);
    m.optional("deletable", s.deletable);
    m.optional("replicateable", s.replicateable);
    m.optional("retrieveable", s.retrieveable);
    m.optional("searchable", s.searchable);
    m.optional("deprecatedAndHidden", s.deprecated_and_hidden);
}

// "name" is read first so later messages can say which field is broken.
FieldDescribe read_field(const json &j, const std::string &where) {
    FieldDescribe f;
    {
        const Members first(j, where);
        f.name = first.required_string("name");
    }
    const Members m(j, where + " (" + quote_for_message(f.name) + ")");
    f.type = m.required_string("type");
    m.optional("label", f.label);
    m.optional("soapType", f.soap_type);
    m.optional("length", f.length);
    m.optional("byteLength", f.byte_length);
    m.optional("precision", f.precision);
    m.optional("scale", f.scale);
    m.optional("digits", f.digits);
    m.optional("nillable", f.nillable);
    m.optional("custom", f.custom);
    m.optional("createable", f.createable);
    m.optional("updateable", f.updateable);
    m.optional("defaultedOnCreate", f.defaulted_on_create);
    m.optional("filterable", f.filterable);
    m.optional("sortable", f.sortable);
    m.optional("groupable", f.groupable);
    m.optional("aggregatable", f.aggregatable);
    m.optional("calculated", f.calculated);
    m.optional("externalId", f.external_id);
    m.optional("idLookup", f.id_lookup);
    m.optional("unique", f.unique);
    m.optional("caseSensitive", f.case_sensitive);
    m.optional("nameField", f.name_field);
    m.optional("autoNumber", f.auto_number);
    m.optional("namePointing", f.name_pointing);
    m.optional("polymorphicForeignKey", f.polymorphic_foreign_key);
    m.optional("restrictedPicklist", f.restricted_picklist);
    m.optional("dependentPicklist", f.dependent_picklist);
    m.optional("encrypted", f.encrypted);
    m.optional("htmlFormatted", f.html_formatted);
    m.optional("deprecatedAndHidden", f.deprecated_and_hidden);
    m.optional("compoundFieldName", f.compound_field_name);
    m.optional("relationshipName", f.relationship_name);
    m.optional("referenceTo", f.reference_to);
    const json *picklist = m.optional_array("picklistValues");
    for (std::size_t i = 0; picklist != nullptr && i < picklist->size(); ++i) {
        const Members entry((*picklist)[i], m.where() + " picklistValues[" + std::to_string(i) + "]");
        bool active = true;  // a value without the flag is offered, so it counts as active
        entry.optional("active", active);
        if (active) {
            f.picklist_values.push_back(entry.required_string("value"));
        }
    }
    return f;
}

std::string list_of(const std::vector<std::string> &names) {
    std::string out;
    for (const std::string &n : names) {
        out += (out.empty() ? "" : ", ") + n;
    }
    return out;
}

std::string joined_path(const std::vector<std::string> &parts) {
    std::string out;
    for (const std::string &p : parts) {
        out += (out.empty() ? "" : ".") + p;
    }
    return out;
}

}  // namespace

const SObjectSummary *GlobalDescribe::find(std::string_view object_name) const {
    for (const SObjectSummary &s : sobjects) {
        if (ascii_iequals(s.name, object_name)) {
            return &s;
        }
    }
    return nullptr;
}

const FieldDescribe *ObjectDescribe::find_field(std::string_view field_name) const {
    for (const FieldDescribe &f : fields) {
        if (ascii_iequals(f.name, field_name)) {
            return &f;
        }
    }
    return nullptr;
}

const FieldDescribe *ObjectDescribe::find_relationship(std::string_view relationship_name) const {
    for (const FieldDescribe &f : fields) {
        if (!f.relationship_name.empty() && ascii_iequals(f.relationship_name, relationship_name)) {
            return &f;
        }
    }
    return nullptr;
}

GlobalDescribe parse_describe_global(std::string_view json_text) {
    const json j = parse_object(json_text, "describeGlobal");
    const Members top(j, "describeGlobal answer");
    GlobalDescribe g;
    top.optional("encoding", g.encoding);
    top.optional("maxBatchSize", g.max_batch_size);
    const json &list = top.required_array("sobjects");
    g.sobjects.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string where = "describeGlobal sobjects[" + std::to_string(i) + "]";
        const Members first(list[i], where);
        const std::string name = first.required_string("name");
        SObjectSummary s;
        read_summary(Members(list[i], where + " (" + quote_for_message(name) + ")"), s);
        g.sobjects.push_back(std::move(s));
    }
    return g;
}

ObjectDescribe parse_sobject_describe(std::string_view json_text) {
    const json j = parse_object(json_text, "sObject describe");
    ObjectDescribe d;
    {
        const Members first(j, "sObject describe");
        d.name = first.required_string("name");
    }
    const Members top(j, "sObject describe of " + quote_for_message(d.name));
    read_summary(top, d);
    const json &fields = top.required_array("fields");
    d.fields.reserve(fields.size());
    for (std::size_t i = 0; i < fields.size(); ++i) {
        d.fields.push_back(read_field(fields[i], top.where() + " fields[" + std::to_string(i) + "]"));
    }
    const json *children = top.optional_array("childRelationships");
    for (std::size_t i = 0; children != nullptr && i < children->size(); ++i) {
        const Members c((*children)[i], top.where() + " childRelationships[" + std::to_string(i) + "]");
        ChildRelationship r;
        r.child_sobject = c.required_string("childSObject");
        r.field = c.required_string("field");
        c.optional("relationshipName", r.relationship_name);
        c.optional("cascadeDelete", r.cascade_delete);
        d.child_relationships.push_back(std::move(r));
    }
    return d;
}

ResolvedField resolve_field_path(const ObjectDescribe &root, const std::vector<std::string> &parts,
                                 const DescribeLookup &lookup) {
    const std::string path = joined_path(parts);
    const auto fail = [&](const std::string &what) {
        throw Error(ErrorKind::InvalidParameter,
                    what + " (in field path " + quote_for_message(path, 200) + ")");
    };
    if (parts.empty()) {
        throw Error(ErrorKind::Internal, "resolve_field_path called with an empty path");
    }
    ResolvedField out;
    const ObjectDescribe *current = &root;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        const std::string &rel_name = parts[i];
        const FieldDescribe *rel = current->find_relationship(rel_name);
        if (rel == nullptr) {
            if (i == 0 && ascii_iequals(rel_name, root.name)) {
                fail("prefixing fields with the object name (" + rel_name +
                     ".) is not supported; write the path without it");
            }
            std::string hint;
            if (const FieldDescribe *same = current->find_field(rel_name);
                same != nullptr && !same->relationship_name.empty()) {
                hint = "; the relationship of field " + same->name + " is " + same->relationship_name;
            }
            fail(current->name + " has no relationship " + quote_for_message(rel_name) + hint);
        }
        std::string target;
        if (rel->reference_to.size() == 1) {
            target = rel->reference_to.front();
        } else if (rel->reference_to.size() > 1) {
            target = std::string(kPolymorphicTargetObject);
            out.through_polymorphic = true;
        } else {
            fail("relationship " + rel->relationship_name + " of " + current->name +
                 " has no referenceTo target");
        }
        const ObjectDescribe *next = lookup ? lookup(target) : nullptr;
        if (next == nullptr) {
            if (rel->reference_to.size() > 1) {
                fail("relationship " + rel->relationship_name + " of " + current->name + " is polymorphic (" +
                     list_of(rel->reference_to) + "); a path through it reaches only fields of the " +
                     std::string(kPolymorphicTargetObject) +
                     " pseudo-object, whose describe is not available");
            }
            fail("the describe of " + target + " (target of " + current->name + "." + rel->relationship_name +
                 ") is not available");
        }
        out.relationship_fields.push_back(rel->name);
        current = next;
    }
    const std::string &leaf_name = parts.back();
    const FieldDescribe *leaf = current->find_field(leaf_name);
    if (leaf == nullptr) {
        if (const FieldDescribe *rel = current->find_relationship(leaf_name)) {
            fail(quote_for_message(leaf_name) + " is a relationship of " + current->name +
                 ", not a field; select one of its fields (e.g. " + leaf_name + ".Id) or the field " +
                 rel->name);
        }
        fail(current->name + " has no field " + quote_for_message(leaf_name));
    }
    out.field = *leaf;
    out.object = current->name;
    return out;
}

}  // namespace sfb
