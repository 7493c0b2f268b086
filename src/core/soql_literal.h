// SOQL literals for the foreign-data-wrapper deparser (docs/soql-and-rest.md §2.2, §2.6): the text to put on
// the right of a pushed-down comparison. The glue breaks PostgreSQL values down into plain C++ values
// (UTF-8 text, CivilDateTime in UTC, numeric_out's text) and calls these.
//
// A writer that cannot write a value throws sfb::Error(InvalidParameter) (soql_like_literal returns nullopt
// instead); the deparser then keeps that qual local rather than push something Salesforce would read
// otherwise.
#pragma once
#include "core/core_only.h"

#include "core/sf_values.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sfb {

// Salesforce takes at most 4,000 characters in one WHERE string literal (§1.6). The writers count what they
// write between the quotes, escapes as written (\' is two) and in UTF-16 code units as Java does (a
// character outside the BMP is two): never fewer than Salesforce can count.
inline constexpr std::size_t kMaxSoqlStringLiteralChars = 4000;
// The years Salesforce's date and datetime values span (Salesforce's "valid date range").
inline constexpr int kMinSoqlYear = 1700;
inline constexpr int kMaxSoqlYear = 4000;

// 'O\'Brien': single-quoted, with \' \" \\ \n \r \t \b \f, other C0 controls as \u00XX, everything else as
// UTF-8. Throws InvalidParameter for text that is not valid UTF-8, holds U+0000, or would be longer than
// kMaxSoqlStringLiteralChars.
std::string soql_string_literal(std::string_view utf8);

// A PostgreSQL LIKE pattern (escape character backslash, the default: "\x" is a literal x; % and _ are
// wildcards) as a SOQL LIKE literal: % and _ kept, literal % and _ written \% and \_, quotes and controls
// escaped as in soql_string_literal. A literal backslash is written as the wildcard _ (a superset): SOQL
// documents \\ as a backslash but not whether LIKE then reads that backslash as an escape (§2.2).
//
// *exact (when not null) is set to true when the SOQL pattern matches exactly the strings the PostgreSQL
// pattern matches, up to case (SOQL LIKE always folds case, §2.1: the caller rechecks a case-sensitive
// LIKE), and false when it matches more (a literal backslash). nullopt when the pattern cannot be written:
// a trailing escape character (PostgreSQL rejects the pattern), invalid UTF-8, U+0000, or more than
// kMaxSoqlStringLiteralChars characters written.
std::optional<std::string> soql_like_literal(std::string_view postgres_like_pattern, bool *exact);

// 2024-01-31 (unquoted; for date fields only). Throws InvalidParameter for a year outside 1700..4000 or a
// month/day out of range.
std::string soql_date_literal(const CivilDateTime &date);

// 2024-01-31T12:00:00Z (unquoted, UTC; for datetime fields only). Salesforce keeps datetimes to the second
// (§1.4), so `utc` must have millisecond 0: throws InvalidParameter otherwise (the caller rounds a bound
// the right way, or keeps the qual local), and for fields out of range as soql_date_literal does.
std::string soql_datetime_literal(const CivilDateTime &utc);

// -3.5, 10: a plain decimal as numeric_out prints it, returned unchanged. Throws InvalidParameter for
// anything but -?[0-9]+(\.[0-9]+)? (exponents, NaN, Infinity, '+', empty text): SOQL's exponent form is
// unverified (§2.6).
std::string soql_number_literal(std::string_view plain_decimal);

// TRUE / FALSE.
inline std::string_view soql_boolean_literal(bool value) {
    return value ? "TRUE" : "FALSE";
}

}  // namespace sfb
