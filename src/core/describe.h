// Salesforce describe answers as typed values (docs/soql-and-rest.md §3.1, §3.2): describeGlobal
// (GET .../sobjects) and sObject describe (GET .../sobjects/{Object}/describe). The read path needs them to
// decide what can be imported and queried, to map field types onto PostgreSQL (type_map.h) and to resolve
// relationship paths such as Owner.Email before a job is created.
//
// Parsing is tolerant of keys it does not know (the answers grow every release) and strict about the few it
// cannot work without; a missing required key, or a known key with a value of the wrong JSON type, throws
// sfb::Error(ExternalService) naming the key and the object. Optional keys that are absent or JSON null
// take the defaults written next to each member: chosen so that a missing flag never enables a pushdown
// (filterable, sortable, ... default to false) nor forbids a null (nillable defaults to true).
#pragma once
#include "core/core_only.h"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace sfb {

struct FieldDescribe {
    // Required.
    std::string name;
    std::string
        type;  // as sent: "string", "reference", "datetime", "anyType", ... (compare case-insensitively)
    // Optional.
    std::string label;
    std::string soap_type;  // "xsd:string", "tns:ID", "urn:address", ...
    long long length = 0;   // characters
    long long byte_length = 0;
    long long precision = 0;  // double/currency/percent: total digits
    long long scale = 0;      // double/currency/percent: fractional digits
    long long digits = 0;     // int
    bool nillable = true;
    bool custom = false;
    bool createable = false;
    bool updateable = false;
    bool defaulted_on_create = false;
    bool filterable = false;
    bool sortable = false;
    bool groupable = false;
    bool aggregatable = false;
    bool calculated = false;  // formula: read-only, may change without SystemModstamp
    bool external_id = false;
    bool id_lookup = false;
    bool unique = false;
    bool case_sensitive = false;
    bool name_field = false;
    bool auto_number = false;
    bool name_pointing = false;
    bool polymorphic_foreign_key = false;
    bool restricted_picklist = false;
    bool dependent_picklist = false;
    bool encrypted = false;
    bool html_formatted = false;
    bool deprecated_and_hidden = false;
    std::string compound_field_name;  // on components: BillingCity -> "BillingAddress"; "" otherwise
    std::string relationship_name;    // on references: OwnerId -> "Owner"; "" otherwise
    std::vector<std::string> reference_to;
    std::vector<std::string> picklist_values;  // the active values, in describe order
};

struct ChildRelationship {
    std::string child_sobject;      // required
    std::string field;              // required: the child's reference field
    std::string relationship_name;  // "" for relationships that cannot be queried as a subquery
    bool cascade_delete = false;
};

// One describeGlobal entry; also the object-level part of an sObject describe.
struct SObjectSummary {
    // Required.
    std::string name;
    bool queryable = false;
    // Optional.
    std::string label;
    std::string label_plural;
    std::string key_prefix;  // may be null in the answer: ""
    bool custom = false;
    bool custom_setting = false;
    bool createable = false;
    bool updateable = false;
    bool deletable = false;
    bool replicateable = false;  // needed by /updated and /deleted (§4.3)
    bool retrieveable = false;
    bool searchable = false;
    bool deprecated_and_hidden = false;
};

struct GlobalDescribe {
    std::string encoding;
    long long max_batch_size = 0;
    std::vector<SObjectSummary> sobjects;  // required key "sobjects"

    const SObjectSummary *find(std::string_view object_name) const;  // case-insensitive; nullptr if absent
};

struct ObjectDescribe : SObjectSummary {
    std::vector<FieldDescribe> fields;  // required key "fields"
    std::vector<ChildRelationship> child_relationships;

    // Case-insensitive, as Salesforce matches names; nullptr if absent.
    const FieldDescribe *find_field(std::string_view field_name) const;
    // The reference field whose relationshipName is `relationship_name` (case-insensitive); nullptr if none.
    const FieldDescribe *find_relationship(std::string_view relationship_name) const;
};

GlobalDescribe parse_describe_global(std::string_view json_text);
ObjectDescribe parse_sobject_describe(std::string_view json_text);

// Pseudo-object a path through a polymorphic reference reaches (docs/soql-and-rest.md §2.8): Owner.Email on
// an OwnerId with referenceTo [Group, User] is a field of "Name", not of User.
inline constexpr std::string_view kPolymorphicTargetObject = "Name";

// Returns the describe of an object, or nullptr when it is not available (unknown, not fetched). The pointer
// need only stay valid until resolve_field_path returns.
using DescribeLookup = std::function<const ObjectDescribe *(std::string_view object_name)>;

struct ResolvedField {
    FieldDescribe field;                           // the leaf field (a copy)
    std::string object;                            // the object that owns it, e.g. "User" for Owner.Email
    std::vector<std::string> relationship_fields;  // reference fields followed, e.g. {"OwnerId"}
    bool through_polymorphic = false;              // some step went through the Name pseudo-object
};

// Resolves a field path as parsed by soql_select ({"Owner", "Email"}) from `root`. Every part but the last
// must be a relationshipName on the current object; a reference with several referenceTo targets continues
// on kPolymorphicTargetObject. Throws sfb::Error(InvalidParameter) naming the object, the part and the whole
// path when a part does not resolve, when a relationship is selected without a field, or when a needed
// describe is not available from `lookup`.
ResolvedField resolve_field_path(const ObjectDescribe &root, const std::vector<std::string> &parts,
                                 const DescribeLookup &lookup);

}  // namespace sfb
