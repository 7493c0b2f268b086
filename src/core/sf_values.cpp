#include "core/sf_values.h"

#include "core/error.h"

#include <cctype>
#include <cstdlib>
#include <cstring>

namespace sfb {

namespace {

// "00" … "99": a date-time is seven zero-padded numbers, millions of times per job.
constexpr char kTwoDigits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

// Zero-padded decimal of at least `width` digits (a '-' before the padding for negative values). Real
// dates take the table paths; anything else (hour 24, a value wider than its field) the general loop.
char *write_padded(char *out, int value, int width) {
    if (value >= 0 && value < 100 && width == 2) {
        std::memcpy(out, kTwoDigits + 2 * value, 2);
        return out + 2;
    }
    if (value >= 0 && value < 1000 && width == 3) {
        *out++ = static_cast<char>('0' + value / 100);
        std::memcpy(out, kTwoDigits + 2 * (value % 100), 2);
        return out + 2;
    }
    if (value >= 0 && value < 10000 && width == 4) {
        std::memcpy(out, kTwoDigits + 2 * (value / 100), 2);
        std::memcpy(out + 2, kTwoDigits + 2 * (value % 100), 2);
        return out + 4;
    }
    char digits[12];
    int len = 0;
    unsigned v = value < 0 ? 0u - static_cast<unsigned>(value) : static_cast<unsigned>(value);
    do {
        digits[len++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0 && len < 11);
    if (value < 0)
        *out++ = '-';
    for (int i = len; i < width; ++i)
        *out++ = '0';
    while (len > 0)
        *out++ = digits[--len];
    return out;
}

void check_year(const CivilDateTime &value) {
    if (value.year < 1 || value.year > 9999)
        throw Error(ErrorKind::DataException, "the year " + std::to_string(value.year) +
                                                  " cannot be sent to Salesforce (it takes years 1 to 9999)");
}

char *write_date_at(char *out, const CivilDateTime &value) {
    check_year(value);
    out = write_padded(out, value.year, 4);
    *out++ = '-';
    out = write_padded(out, value.month, 2);
    *out++ = '-';
    return write_padded(out, value.day, 2);
}

char *write_time_at(char *out, const CivilDateTime &value) {
    out = write_padded(out, value.hour, 2);
    *out++ = ':';
    out = write_padded(out, value.minute, 2);
    *out++ = ':';
    out = write_padded(out, value.second, 2);
    *out++ = '.';
    out = write_padded(out, value.millisecond, 3);
    *out++ = 'Z';
    return out;
}

}  // namespace

std::size_t write_date(char *out, const CivilDateTime &value) {
    return static_cast<std::size_t>(write_date_at(out, value) - out);
}

std::size_t write_utc_datetime(char *out, const CivilDateTime &value) {
    char *end = write_date_at(out, value);
    *end++ = 'T';
    return static_cast<std::size_t>(write_time_at(end, value) - out);
}

std::size_t write_utc_time(char *out, const CivilDateTime &value) {
    return static_cast<std::size_t>(write_time_at(out, value) - out);
}

void append_date(std::string &out, const CivilDateTime &value) {
    char text[kCivilTextMax];
    out.append(text, write_date(text, value));
}

void append_utc_datetime(std::string &out, const CivilDateTime &value) {
    char text[kCivilTextMax];
    out.append(text, write_utc_datetime(text, value));
}

void append_utc_time(std::string &out, const CivilDateTime &value) {
    char text[kCivilTextMax];
    out.append(text, write_utc_time(text, value));
}

bool is_plain_decimal(std::string_view text) noexcept {
    for (char c : text) {
        if ((c < '0' || c > '9') && c != '-' && c != '.')
            return false;
    }
    return true;
}

std::string plain_decimal(std::string_view text, std::string_view what) {
    size_t exp_pos = text.find_first_of("eE");
    bool has_digit = false;
    for (char c : text.substr(0, exp_pos))
        has_digit = has_digit || std::isdigit(static_cast<unsigned char>(c));
    if (!has_digit)  // NaN, Infinity, -Infinity
        throw Error(ErrorKind::DataException, std::string(what) + " is " + std::string(text.substr(0, 16)) +
                                                  ", which Salesforce cannot store");
    if (exp_pos == std::string_view::npos)
        return std::string(text);

    std::string_view mantissa = text.substr(0, exp_pos);
    long exponent = std::strtol(std::string(text.substr(exp_pos + 1)).c_str(), nullptr, 10);
    bool negative = !mantissa.empty() && mantissa.front() == '-';
    if (negative || (!mantissa.empty() && mantissa.front() == '+'))
        mantissa.remove_prefix(1);

    // digits without the point, and where the point was
    std::string digits;
    long point = -1;
    for (char c : mantissa) {
        if (c == '.')
            point = static_cast<long>(digits.size());
        else
            digits += c;
    }
    if (point < 0)
        point = static_cast<long>(digits.size());
    point += exponent;

    std::string out;
    if (point <= 0) {
        out = "0." + std::string(static_cast<size_t>(-point), '0') + digits;
    } else if (point >= static_cast<long>(digits.size())) {
        out = digits + std::string(static_cast<size_t>(point) - digits.size(), '0');
    } else {
        out = digits.substr(0, static_cast<size_t>(point)) + "." + digits.substr(static_cast<size_t>(point));
    }
    // Trim a fractional part's trailing zeros and leading zeros of the integer part.
    if (out.find('.') != std::string::npos) {
        while (out.back() == '0')
            out.pop_back();
        if (out.back() == '.')
            out.pop_back();
    }
    size_t first = out.find_first_not_of('0');
    if (first == std::string::npos)
        out = "0";
    else if (out[first] == '.')
        out.erase(0, first - 1);
    else
        out.erase(0, first);
    return negative && out != "0" ? "-" + out : out;
}

}  // namespace sfb
