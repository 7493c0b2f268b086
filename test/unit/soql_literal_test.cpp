#include "core/soql_literal.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <string>

namespace sfb {
namespace {

// The message of the sfb::Error(InvalidParameter) `f` throws; "" when it does not throw.
template <typename F>
std::string refusal(F f) {
    try {
        f();
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter) << e.what();
        return e.what();
    }
    return "";
}

std::string like(std::string_view pattern, bool expect_exact = true) {
    bool exact = !expect_exact;
    const std::optional<std::string> out = soql_like_literal(pattern, &exact);
    EXPECT_TRUE(out.has_value()) << pattern;
    EXPECT_EQ(exact, expect_exact) << pattern;
    return out.value_or("<nullopt>");
}

CivilDateTime at(int y, int mo, int d, int h = 0, int mi = 0, int s = 0, int ms = 0) {
    CivilDateTime v;
    v.year = y, v.month = mo, v.day = d, v.hour = h, v.minute = mi, v.second = s, v.millisecond = ms;
    return v;
}

TEST(SoqlStringLiteral, QuotesAndEscapes) {
    EXPECT_EQ(soql_string_literal(""), "''");
    EXPECT_EQ(soql_string_literal("Acme"), "'Acme'");
    EXPECT_EQ(soql_string_literal("O'Brien"), "'O\\'Brien'");
    EXPECT_EQ(soql_string_literal("say \"hi\""), "'say \\\"hi\\\"'");
    EXPECT_EQ(soql_string_literal("C:\\temp\\"), "'C:\\\\temp\\\\'");
    EXPECT_EQ(soql_string_literal("a\nb\rc\td\be\ff"), "'a\\nb\\rc\\td\\be\\ff'");
    EXPECT_EQ(soql_string_literal("\r\n"), "'\\r\\n'");
    EXPECT_EQ(soql_string_literal("\\'"), "'\\\\\\''");
    // Wildcards mean nothing outside LIKE and are not escaped (\% is an error there, §2.2).
    EXPECT_EQ(soql_string_literal("100%_x"), "'100%_x'");
}

TEST(SoqlStringLiteral, OtherControlsAsUnicodeEscapes) {
    EXPECT_EQ(soql_string_literal(std::string_view("\x01\x1F\x1B", 3)), "'\\u0001\\u001F\\u001B'");
    EXPECT_EQ(soql_string_literal("\x7F"), "'\x7F'");  // DEL is not a C0 control
}

TEST(SoqlStringLiteral, UnicodeAsUtf8) {
    EXPECT_EQ(soql_string_literal("caf\xC3\xA9"), "'caf\xC3\xA9'");
    EXPECT_EQ(soql_string_literal("\xE2\x82\xAC \xE4\xB8\xAD"), "'\xE2\x82\xAC \xE4\xB8\xAD'");
    EXPECT_EQ(soql_string_literal("\xF0\x9F\x98\x80"), "'\xF0\x9F\x98\x80'");
    EXPECT_EQ(soql_string_literal("SERV\xC4\xB0"
                                  "CE"),
              "'SERV\xC4\xB0"
              "CE'");
    EXPECT_EQ(soql_string_literal("\xF4\x8F\xBF\xBF"), "'\xF4\x8F\xBF\xBF'");  // U+10FFFF
}

TEST(SoqlStringLiteral, RefusesWhatCannotBeWritten) {
    const std::string bad_utf8 = "text that is not valid UTF-8 cannot be written as a SOQL string literal";
    for (const char *text : {"\xC3", "\xC3\x28", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80",
                             "\xF4\x90\x80\x80", "\xF8\x88\x80\x80\x80", "\x80", "ok\xFF"}) {
        EXPECT_EQ(refusal([&] { soql_string_literal(text); }), bad_utf8) << text;
    }
    EXPECT_EQ(refusal([] { soql_string_literal(std::string_view("a\0b", 3)); }),
              "text holding U+0000 cannot be written as a SOQL string literal");
}

TEST(SoqlStringLiteral, LengthLimit) {
    EXPECT_EQ(soql_string_literal(std::string(4000, 'x')).size(), 4002u);
    EXPECT_EQ(refusal([] { soql_string_literal(std::string(4001, 'x')); }),
              "a SOQL string literal holds at most 4000 characters; this one would hold 4001");
    // Escapes count as written, characters outside the BMP as two UTF-16 units.
    EXPECT_EQ(refusal([] { soql_string_literal(std::string(3999, 'x') + "'"); }),
              "a SOQL string literal holds at most 4000 characters; this one would hold 4001");
    std::string emoji;
    for (int i = 0; i < 2000; ++i) {
        emoji += "\xF0\x9F\x98\x80";
    }
    EXPECT_NO_THROW(soql_string_literal(emoji));
    EXPECT_NE(refusal([&] { soql_string_literal(emoji + "x"); }), "");
    std::string e_acute;
    for (int i = 0; i < 4000; ++i) {
        e_acute += "\xC3\xA9";  // two bytes, one unit
    }
    EXPECT_NO_THROW(soql_string_literal(e_acute));
}

TEST(SoqlLikeLiteral, WildcardsAndLiterals) {
    EXPECT_EQ(like(""), "''");
    EXPECT_EQ(like("Acme"), "'Acme'");
    EXPECT_EQ(like("Ter%"), "'Ter%'");
    EXPECT_EQ(like("_a%b_"), "'_a%b_'");
    EXPECT_EQ(like("Ter\\%"), "'Ter\\%'");    // PostgreSQL \% -> SOQL \%
    EXPECT_EQ(like("Ter\\%%"), "'Ter\\%%'");  // the §2.6 example
    EXPECT_EQ(like("a\\_b"), "'a\\_b'");
    EXPECT_EQ(like("\\a\\b\\'"), "'ab\\''");  // any other escaped character is itself
    EXPECT_EQ(like("O'Brien%"), "'O\\'Brien%'");
    EXPECT_EQ(like("\"q\"%"), "'\\\"q\\\"%'");
    EXPECT_EQ(like("line\r\n%\t"), "'line\\r\\n%\\t'");
    EXPECT_EQ(like(std::string_view("\x01%", 2)), "'\\u0001%'");
    EXPECT_EQ(like("caf\xC3\xA9%\xF0\x9F\x98\x80_"), "'caf\xC3\xA9%\xF0\x9F\x98\x80_'");
    EXPECT_EQ(like("\\\xC3\xA9"), "'\xC3\xA9'");  // an escaped multi-byte character
}

TEST(SoqlLikeLiteral, LiteralBackslashBecomesAWildcard) {
    EXPECT_EQ(like("C:\\\\temp%", false), "'C:_temp%'");
    EXPECT_EQ(like("\\\\", false), "'_'");
    EXPECT_EQ(like("\\\\\\%", false), "'_\\%'");
}

TEST(SoqlLikeLiteral, ExactMayBeNull) {
    EXPECT_EQ(soql_like_literal("a\\\\b", nullptr), "'a_b'");
}

TEST(SoqlLikeLiteral, NulloptWhenItCannotBeWritten) {
    bool exact = true;
    EXPECT_EQ(soql_like_literal("abc\\", &exact), std::nullopt);  // PostgreSQL refuses it too
    EXPECT_EQ(soql_like_literal("\\", &exact), std::nullopt);
    EXPECT_EQ(soql_like_literal("a\xC3", &exact), std::nullopt);
    EXPECT_EQ(soql_like_literal("\\\xFF", &exact), std::nullopt);
    EXPECT_EQ(soql_like_literal(std::string_view("a\0%", 3), &exact), std::nullopt);
    EXPECT_EQ(soql_like_literal(std::string(4001, '%'), &exact), std::nullopt);
    EXPECT_EQ(soql_like_literal(std::string(2000, 'a') + std::string(1001, '\''), &exact), std::nullopt);
    EXPECT_TRUE(soql_like_literal(std::string(4000, '%'), &exact).has_value());
    EXPECT_EQ(soql_like_literal(std::string(2001, '\\'), &exact), std::nullopt);  // ends in an escape
    EXPECT_EQ(soql_like_literal(std::string(2000, '\\') + "_", &exact), "'" + std::string(1001, '_') + "'");
}

TEST(SoqlDateLiteral, Writes) {
    EXPECT_EQ(soql_date_literal(at(2024, 1, 31)), "2024-01-31");
    EXPECT_EQ(soql_date_literal(at(2024, 2, 29)), "2024-02-29");
    EXPECT_EQ(soql_date_literal(at(2000, 2, 29)), "2000-02-29");
    EXPECT_EQ(soql_date_literal(at(1700, 1, 1)), "1700-01-01");
    EXPECT_EQ(soql_date_literal(at(4000, 12, 31, 23, 59, 59, 999)), "4000-12-31");  // time ignored
}

TEST(SoqlDateLiteral, Refuses) {
    EXPECT_EQ(refusal([] { soql_date_literal(at(1699, 12, 31)); }),
              "a date in the year 1699 cannot be written as a SOQL literal (years 1700 to 4000)");
    EXPECT_EQ(refusal([] { soql_date_literal(at(4001, 1, 1)); }),
              "a date in the year 4001 cannot be written as a SOQL literal (years 1700 to 4000)");
    EXPECT_EQ(refusal([] { soql_date_literal(at(2023, 2, 29)); }),
              "a date with month 2 and day 29 is not a calendar date");
    EXPECT_NE(refusal([] { soql_date_literal(at(1900, 2, 29)); }), "");
    EXPECT_NE(refusal([] { soql_date_literal(at(2024, 13, 1)); }), "");
    EXPECT_NE(refusal([] { soql_date_literal(at(2024, 0, 1)); }), "");
    EXPECT_NE(refusal([] { soql_date_literal(at(2024, 4, 31)); }), "");
    EXPECT_NE(refusal([] { soql_date_literal(at(2024, 4, 0)); }), "");
}

TEST(SoqlDatetimeLiteral, WritesUtcToTheSecond) {
    EXPECT_EQ(soql_datetime_literal(at(2024, 1, 31, 12, 0, 0)), "2024-01-31T12:00:00Z");
    EXPECT_EQ(soql_datetime_literal(at(1999, 12, 31, 23, 59, 59)), "1999-12-31T23:59:59Z");
    EXPECT_EQ(soql_datetime_literal(at(1700, 1, 1)), "1700-01-01T00:00:00Z");
}

TEST(SoqlDatetimeLiteral, Refuses) {
    EXPECT_EQ(refusal([] { soql_datetime_literal(at(2024, 1, 31, 12, 0, 0, 500)); }),
              "a datetime with a fraction of a second cannot be written as a SOQL literal (Salesforce keeps "
              "datetimes to the second)");
    EXPECT_EQ(refusal([] { soql_datetime_literal(at(2024, 1, 31, 24, 0, 0)); }),
              "a datetime at 24:0:0 is not a time of day");
    EXPECT_NE(refusal([] { soql_datetime_literal(at(2024, 1, 31, 12, 60, 0)); }), "");
    EXPECT_NE(refusal([] { soql_datetime_literal(at(2024, 1, 31, 12, 0, 60)); }), "");
    EXPECT_NE(refusal([] { soql_datetime_literal(at(2024, 1, 31, -1, 0, 0)); }), "");
    EXPECT_EQ(refusal([] { soql_datetime_literal(at(10000, 1, 1)); }),
              "a datetime in the year 10000 cannot be written as a SOQL literal (years 1700 to 4000)");
    EXPECT_NE(refusal([] { soql_datetime_literal(at(2024, 2, 30)); }), "");
}

TEST(SoqlNumberLiteral, PlainDecimalsUnchanged) {
    for (const char *n : {"0", "10", "-3.5", "0.001", "-0", "12345678901234567890.123456789", "007"}) {
        EXPECT_EQ(soql_number_literal(n), n);
    }
}

TEST(SoqlNumberLiteral, RefusesEverythingElse) {
    for (const char *n :
         {"",    "-",      ".",   "1.",       ".5",        "-.5", "1.2.3", "1-2", "--1",  "+1",   "1e5",
          "1E5", "1.5e-3", "NaN", "Infinity", "-Infinity", " 1",  "1 ",    "1,5", "0x10", "1_000"}) {
        EXPECT_EQ(
            refusal([&] { soql_number_literal(n); }),
            "a number that is not a plain decimal (digits, an optional sign and fraction) cannot be written "
            "as a SOQL literal")
            << n;
    }
}

TEST(SoqlBooleanLiteral, Writes) {
    EXPECT_EQ(soql_boolean_literal(true), "TRUE");
    EXPECT_EQ(soql_boolean_literal(false), "FALSE");
}

}  // namespace
}  // namespace sfb
