// The pre-flight of an ingest call: the columns a query will send, checked against the object's describe
// before a single row is spooled, so that a typo costs an error at the prompt instead of an upload that
// Salesforce refuses minutes later. Pure: the glue reads the query's columns and the describes (through the
// one describe cache) and reports what this returns.
//
// What it checks (the README's "Checked before sending" lists the same): the object allows the operation;
// every column is a field of the object, or a relationship to another object followed by a field that
// identifies its records (an external id or an idLookup field); Id is sent exactly where the operation
// needs it; each field may be set by the operation (createable for insert, updateable for update, either for
// upsert); upsert's external_id is an external id of the object; insert sends every required field (one
// that is createable, not nillable and not defaulted on create); each column's PostgreSQL type can hold
// values of the field's type. Problems that lose data are errors; values Salesforce would round are
// warnings.
#pragma once
#include "core/core_only.h"

#include "core/bulk_api.h"
#include "core/describe.h"

#include <optional>
#include <string>
#include <vector>

namespace sfb {

// What the glue knows of a query column's PostgreSQL type, as far as Salesforce values are concerned.
enum class SourceKind {
    Text,  // text, varchar, char, name
    Boolean,
    Integer,  // smallint, integer, bigint, oid
    Numeric,  // numeric, with or without (precision, scale)
    Float,    // real, double precision
    Date,
    Timestamp,  // timestamp without time zone (sent as UTC)
    TimestampTz,
    Time,
    TextArray,  // text[] and friends: joined with ';' for a multipicklist
    Other,      // json, uuid, ...: sent in PostgreSQL's text form
};

struct SourceColumn {
    std::string name;     // as sent: "LastName", "Account.External_Id__c", "Owner:User.Username"
    std::string pg_type;  // as format_type prints it, for messages: "numeric(12,4)"
    SourceKind kind = SourceKind::Text;
    int numeric_precision = -1;  // Numeric with a typmod; -1 when unconstrained
    int numeric_scale = -1;
};

struct PreflightReport {
    std::vector<std::string> errors;    // each names the column or field; the call must not go on
    std::vector<std::string> warnings;  // the call goes on
};

// The objects whose describes preflight_ingest will ask `lookup` for: the targets of the relationships the
// columns follow (e.g. {"Account"} for Account.External_Id__c on Contact), in column order, no duplicates.
// Unknown relationships are left out (preflight reports them).
std::vector<std::string> preflight_referenced_objects(const ObjectDescribe &object,
                                                      const std::vector<SourceColumn> &columns);

PreflightReport preflight_ingest(Operation operation, const ObjectDescribe &object,
                                 const std::optional<std::string> &external_id,
                                 const std::vector<SourceColumn> &columns, const DescribeLookup &lookup);

// Up to `limit` names of `candidates` closest to `name` (case-insensitive edit distance, at most about a
// third of the name), best first: the "did you mean" of an unknown name.
std::vector<std::string> closest_names(const std::string &name, const std::vector<std::string> &candidates,
                                       std::size_t limit = 3);

}  // namespace sfb
