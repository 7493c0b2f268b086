// Validation of Salesforce identifiers (object and field API names, CSV column paths, record ids) before
// anything is sent. Names end up in JSON bodies, CSV headers and URL paths; rejecting anything that cannot be
// a Salesforce name early gives users a clear error at SQL time instead of a job that fails minutes later,
// and keeps hostile text (path separators, quotes, control bytes, Unicode look-alikes) out of every request.
#pragma once
#include "core/core_only.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sfb {

// Renders an untrusted value for an error message: wrapped in double quotes, `"` and `\` escaped, bytes
// outside printable ASCII shown as \xNN (so a Cyrillic look-alike is visible as such), and cut after
// `max_bytes` input bytes with "..." appended. Never use it on secrets: it shows the value.
std::string quote_for_message(std::string_view value, std::size_t max_bytes = 64);

// Longest identifier accepted. Salesforce API names are at most 40 characters plus a namespace prefix of up
// to 15 and a suffix; 80 leaves room for every legal name and bounds what we echo in errors.
inline constexpr std::size_t kMaxIdentifierLength = 80;

// Grammar (ASCII only, checked byte by byte):
//   identifier := segment ("__" segment){0,3}
//   segment    := [A-Za-z] ([A-Za-z0-9] | "_" [A-Za-z0-9])*
// i.e. starts with a letter, no leading/trailing underscore, no "___", at most four "__"-separated segments
// (ns__Loc__Latitude__s is the longest real shape). Suffixes (__c, __mdt, __e, __x, __b, __kav, __Share,
// ChangeEvent, ...) are deliberately not enumerated: Salesforce keeps adding them and the server is the
// authority on existence; this check only guarantees the value *could* be a name.
std::optional<std::string> object_name_error(std::string_view name);  // nullopt when valid
std::optional<std::string> field_name_error(std::string_view name);   // plain field, no dots
bool is_valid_object_name(std::string_view name);
bool is_valid_field_name(std::string_view name);
// Throw sfb::Error(InvalidParameter) with the message of the *_error function.
void validate_object_name(std::string_view name);
void validate_field_name(std::string_view name);

// A CSV header column for ingest (docs/bulk-api-2.md §8):
//   Field                      e.g. LastName, Legacy_Key__c
//   Relationship.Field         e.g. Account.External_Id__c, Parent_Obj__r.Ext__c   (exactly one level)
//   X:Y.Field                  e.g. Owner:User.Username, What:Account.External_Id__c (polymorphic lookups)
// The polymorphic form is checked structurally only (three identifiers): Salesforce names it
// ObjectType:RelationshipName.IndexedField but its examples put the relationship first (docs/bulk-api-2.md
// §8), so the order of X and Y is left to Salesforce. In the plain Rel.Field form a relationship ending in
// "__c" is rejected with a hint to use "__r" (the lookup field's name is not its relationship name;
// Salesforce would fail the whole job at processing time, after the upload).
std::optional<std::string> column_name_error(std::string_view column);
bool is_valid_column_name(std::string_view column);
void validate_column_name(std::string_view column);

// Record ids: 15 characters [A-Za-z0-9] (case-sensitive), or 18 whose last 3 characters are the checksum of
// the first 15 (docs/bulk-api-2.md §2.5). The checksum is compared case-insensitively, as Salesforce does.
std::optional<std::string> record_id_error(std::string_view id);
bool is_valid_record_id(std::string_view id);
void validate_record_id(std::string_view id);
// The 3-character checksum suffix of a 15-character id (throws sfb::Error(InvalidParameter) if `id15` is not
// 15 alphanumeric characters).
std::string record_id_suffix(std::string_view id15);
// The canonical 18-character form of a valid 15- or 18-character id (suffix in upper case). Throws
// sfb::Error(InvalidParameter) for anything else.
std::string to_id18(std::string_view id);
// True when both are valid ids naming the same record (15 vs 18 forms compare equal).
bool same_record_id(std::string_view a, std::string_view b);

}  // namespace sfb
