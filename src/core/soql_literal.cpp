#include "core/soql_literal.h"

#include "core/error.h"

#include <cstdint>

namespace sfb {

namespace {

// The code point starting at s[*i] (advancing *i past it), or -1 for a byte sequence that is not well-formed
// UTF-8: truncated, overlong, a surrogate, or above U+10FFFF.
std::int32_t next_code_point(std::string_view s, std::size_t *i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b0 = byte(*i);
    if (b0 < 0x80) {
        ++*i;
        return b0;
    }
    std::size_t len;
    std::int32_t cp;
    std::int32_t min;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (s.size() - *i < len) {
        return -1;
    }
    for (std::size_t k = 1; k < len; ++k) {
        const unsigned char b = byte(*i + k);
        if ((b & 0xC0) != 0x80) {
            return -1;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return -1;
    }
    *i += len;
    return cp;
}

enum class Written { Ok, InvalidUtf8, Nul };

// Appends one character of a quoted SOQL string (s[*i], advancing *i) with the escapes of §2.6; adds its
// UTF-16 length to *units.
Written append_char(std::string &out, std::string_view s, std::size_t *i, std::size_t *units) {
    const std::size_t start = *i;
    const std::int32_t cp = next_code_point(s, i);
    if (cp < 0) {
        return Written::InvalidUtf8;
    }
    if (cp == 0) {
        return Written::Nul;
    }
    const std::size_t before = out.size();
    switch (cp) {
        case '\'':
            out += "\\'";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        default:
            if (cp < 0x20) {
                static constexpr char kHex[] = "0123456789ABCDEF";
                out += "\\u00";
                out += kHex[cp >> 4];
                out += kHex[cp & 0xF];
            } else {
                out.append(s.substr(start, *i - start));
                *units += cp >= 0x10000 ? 2 : 1;
                return Written::Ok;
            }
    }
    *units += out.size() - before;  // an escape: ASCII, one unit per byte
    return Written::Ok;
}

[[noreturn]] void cannot_write(const std::string &what) {
    throw Error(ErrorKind::InvalidParameter, what);
}

bool is_leap_year(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

void check_date(const CivilDateTime &v, const char *what) {
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    // Salesforce keeps dates and datetimes from 1700 to 4000 and refuses literals outside (MALFORMED_QUERY
    // "invalid date"): such a bound stays with PostgreSQL, which answers it.
    if (v.year < kMinSoqlYear || v.year > kMaxSoqlYear) {
        cannot_write(std::string("a ") + what + " in the year " + std::to_string(v.year) +
                     " cannot be written as a SOQL literal (years 1700 to 4000)");
    }
    if (v.month < 1 || v.month > 12 || v.day < 1 ||
        v.day > kDays[v.month - 1] + (v.month == 2 && is_leap_year(v.year) ? 1 : 0)) {
        cannot_write(std::string("a ") + what + " with month " + std::to_string(v.month) + " and day " +
                     std::to_string(v.day) + " is not a calendar date");
    }
}

}  // namespace

std::string soql_string_literal(std::string_view utf8) {
    std::string out;
    out.reserve(utf8.size() + 2);
    out += '\'';
    std::size_t units = 0;
    for (std::size_t i = 0; i < utf8.size();) {
        switch (append_char(out, utf8, &i, &units)) {
            case Written::Ok:
                break;
            case Written::InvalidUtf8:
                cannot_write("text that is not valid UTF-8 cannot be written as a SOQL string literal");
            case Written::Nul:
                cannot_write("text holding U+0000 cannot be written as a SOQL string literal");
        }
    }
    if (units > kMaxSoqlStringLiteralChars) {
        cannot_write("a SOQL string literal holds at most " + std::to_string(kMaxSoqlStringLiteralChars) +
                     " characters; this one would hold " + std::to_string(units));
    }
    out += '\'';
    return out;
}

std::optional<std::string> soql_like_literal(std::string_view pattern, bool *exact) {
    bool is_exact = true;
    std::string out;
    out.reserve(pattern.size() + 2);
    out += '\'';
    std::size_t units = 0;
    for (std::size_t i = 0; i < pattern.size();) {
        const char c = pattern[i];
        if (c == '%' || c == '_') {
            out += c;  // a wildcard in both
            ++units;
            ++i;
            continue;
        }
        if (c == '\\') {
            if (++i == pattern.size()) {
                return std::nullopt;  // PostgreSQL: "LIKE pattern must not end with escape character"
            }
            const char escaped = pattern[i];
            if (escaped == '%' || escaped == '_') {
                out += '\\';
                out += escaped;
                units += 2;
                ++i;
                continue;
            }
            if (escaped == '\\') {
                out += '_';  // a superset: see the header
                ++units;
                is_exact = false;
                ++i;
                continue;
            }
            // Any other escaped character stands for itself.
        }
        if (append_char(out, pattern, &i, &units) != Written::Ok) {
            return std::nullopt;
        }
    }
    if (units > kMaxSoqlStringLiteralChars) {
        return std::nullopt;
    }
    out += '\'';
    if (exact != nullptr) {
        *exact = is_exact;
    }
    return out;
}

std::string soql_date_literal(const CivilDateTime &date) {
    check_date(date, "date");
    std::string out;
    append_date(out, date);
    return out;
}

std::string soql_datetime_literal(const CivilDateTime &utc) {
    check_date(utc, "datetime");
    if (utc.hour < 0 || utc.hour > 23 || utc.minute < 0 || utc.minute > 59 || utc.second < 0 ||
        utc.second > 59) {
        cannot_write("a datetime at " + std::to_string(utc.hour) + ":" + std::to_string(utc.minute) + ":" +
                     std::to_string(utc.second) + " is not a time of day");
    }
    if (utc.millisecond != 0) {
        cannot_write(
            "a datetime with a fraction of a second cannot be written as a SOQL literal (Salesforce keeps "
            "datetimes to the second)");
    }
    char text[kCivilTextMax];
    const std::size_t n = write_utc_datetime(text, utc);  // 2024-01-31T12:00:00.000Z
    std::string out(text, n - 5);                         // without ".000Z"
    out += 'Z';
    return out;
}

std::string soql_number_literal(std::string_view text) {
    std::size_t i = 0;
    if (i < text.size() && text[i] == '-') {
        ++i;
    }
    const auto digits = [&] {
        const std::size_t start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            ++i;
        }
        return i > start;
    };
    bool ok = is_plain_decimal(text) && digits();
    if (ok && i < text.size() && text[i] == '.') {
        ++i;
        ok = digits();
    }
    if (!ok || i != text.size()) {
        cannot_write(
            "a number that is not a plain decimal (digits, an optional sign and fraction) cannot be "
            "written as a SOQL literal");
    }
    return std::string(text);
}

}  // namespace sfb
