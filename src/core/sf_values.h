// How values are spelled for Salesforce (docs/bulk-api-2.md §8): dates, UTC date-times, plain
// decimals.
// The glue breaks PostgreSQL values down into plain numbers and calls these; nothing here knows
// PostgreSQL's types.
#pragma once
#include "core/core_only.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace sfb {

struct CivilDateTime {
    int year = 1970, month = 1, day = 1;
    int hour = 0, minute = 0, second = 0;
    int millisecond = 0;
};

// Room write_date, write_utc_datetime and write_utc_time need: seven int fields of up to 11 characters
// each plus separators, so any CivilDateTime fits (real values take 10, 24 and 13 bytes).
constexpr std::size_t kCivilTextMax = 96;

// The spellings below, written into `out` (at least kCivilTextMax bytes); return the number of bytes
// written. The spool writer formats into a buffer of its own with these, without a std::string per value.
std::size_t write_date(char *out, const CivilDateTime &value);
std::size_t write_utc_datetime(char *out, const CivilDateTime &value);
std::size_t write_utc_time(char *out, const CivilDateTime &value);

// True when a number's text is already a plain decimal ("-12.50", "42"): only '-', '.' and digits, no
// exponent, NaN or Infinity; plain_decimal would return it unchanged.
bool is_plain_decimal(std::string_view number_text) noexcept;

// "2025-11-04". Throws sfb::Error(DataException) for years outside 1..9999, which Salesforce cannot parse.
void append_date(std::string &out, const CivilDateTime &value);
// "2025-11-04T16:20:07.000Z": the value must already be in UTC.
void append_utc_datetime(std::string &out, const CivilDateTime &value);
// "16:20:07.000Z": a time of day (the date part of `value` is ignored).
void append_utc_time(std::string &out, const CivilDateTime &value);

// Rewrites a number printed by a float output routine ("1.5e+20", "-2.5e-07", "42", "0.1") as a plain
// decimal without exponent ("150000000000000000000", "-0.00000025"). Throws sfb::Error(DataException)
// for NaN and infinities, which Salesforce has no spelling for. `what` names the value in that message.
std::string plain_decimal(std::string_view number_text, std::string_view what);

}  // namespace sfb
