// Call-time validation of a SOQL statement meant for a Bulk API 2.0 query job (docs/bulk-api-2.md §9.1,
// docs/soql-and-rest.md §2.9). Nothing is sent: the point is to refuse, with a message naming the token and
// where it is, what Salesforce would only reject after a job was created (or let fail minutes later), and to
// know the select list well enough to name the result columns before the first row arrives.
//
// Only the select list and the FROM object are parsed. The rest (WHERE, ORDER BY, LIMIT, WITH, ...) is lexed:
// enough to step over string literals, to find forbidden keywords and statement separators, and to tell which
// clauses are present. Whether a WHERE clause is well formed is left to Salesforce.
#pragma once
#include "core/core_only.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sfb {

// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1); two long paths could then silently share a
// column, so parse_soql_select refuses a path whose column name would be longer.
inline constexpr std::size_t kMaxPgIdentifierBytes = 63;

struct SoqlField {
    std::string path;                // as written, e.g. "Owner.Email"
    std::vector<std::string> parts;  // the path split at '.', e.g. {"Owner", "Email"}
    std::string column;              // soql_column_name(path), e.g. "owner_email"
    std::size_t position = 0;        // 1-based character in the statement where the path starts
};

struct SoqlSelect {
    std::string object;  // the FROM object as written
    std::vector<SoqlField> fields;
    // Clauses present at the top level (a semi-join's WHERE inside parentheses does not count).
    bool has_where = false;
    bool has_order_by = false;
    bool has_limit = false;
};

// The column-name rule, the one place it is defined: the field path in ASCII lower case with every '.'
// replaced by '_'. "Name" -> "name", "Owner.Email" -> "owner_email", "Account.Owner.Name" ->
// "account_owner_name", "Parent__r.Ext__c" -> "parent__r_ext__c". Lower case because PostgreSQL folds
// unquoted identifiers, so users can write the columns without quotes; '_' because '.' would need quoting.
// The rule is not injective ("Owner_Email" and "Owner.Email" meet), which parse_soql_select checks.
std::string soql_column_name(std::string_view field_path);

// Parses and validates `soql`. Throws sfb::Error(InvalidParameter) with a message naming the problem, the
// offending token and its 1-based character position, for: an empty statement; anything but SELECT ... FROM
// Object; ';' outside a string (SOQL takes one statement and no terminator); "--", "/*" or "//" outside a
// string (SOQL has no comments); double-quoted or unterminated strings and unknown backslash escapes; what
// Bulk API 2.0 query jobs do not support: GROUP BY, OFFSET, TYPEOF, functions in the select list (aggregates,
// FIELDS(), toLabel(), ...), parent-to-child subqueries; object aliases and FROM lists; malformed names
// (sf_names.h grammar); a field selected twice (case-insensitive); two fields mapping to one column; a
// column name longer than kMaxPgIdentifierBytes.
SoqlSelect parse_soql_select(std::string_view soql);

}  // namespace sfb
