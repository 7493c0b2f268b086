#include "core/error.h"
#include "core/sf_values.h"

#include <gtest/gtest.h>

namespace {

using sfb::CivilDateTime;

TEST(SfValues, DatesArePaddedIso) {
    std::string out;
    sfb::append_date(out, CivilDateTime{7, 3, 9});
    EXPECT_EQ(out, "0007-03-09");
}

TEST(SfValues, DateTimesAreUtcWithMillisecondsAndZ) {
    std::string out;
    sfb::append_utc_datetime(out, CivilDateTime{2025, 11, 4, 16, 20, 7, 5});
    EXPECT_EQ(out, "2025-11-04T16:20:07.005Z");
}

TEST(SfValues, TimesAreUtcWithMillisecondsAndZ) {
    std::string out;
    sfb::append_utc_time(out, CivilDateTime{1, 1, 1, 8, 5, 9, 120});
    EXPECT_EQ(out, "08:05:09.120Z");
}

TEST(SfValues, YearsOutsideFourDigitsAreRefused) {
    std::string out;
    EXPECT_THROW(sfb::append_date(out, CivilDateTime{10000, 1, 1}), sfb::Error);
    EXPECT_THROW(sfb::append_date(out, CivilDateTime{0, 1, 1}), sfb::Error);
    EXPECT_TRUE(out.empty());
}

// The spelling of the printf-free writers before the lookup tables: zero-padded to `width`, '-' first.
std::string reference_padded(long long value, int width) {
    std::string digits = std::to_string(value < 0 ? -value : value);
    std::string out = value < 0 ? "-" : "";
    if (static_cast<int>(digits.size()) < width)
        out.append(static_cast<std::size_t>(width) - digits.size(), '0');
    return out + digits;
}

std::string reference_datetime(const CivilDateTime &v) {
    return reference_padded(v.year, 4) + "-" + reference_padded(v.month, 2) + "-" +
           reference_padded(v.day, 2) + "T" + reference_padded(v.hour, 2) + ":" +
           reference_padded(v.minute, 2) + ":" + reference_padded(v.second, 2) + "." +
           reference_padded(v.millisecond, 3) + "Z";
}

TEST(SfValues, WritersMatchThePaddedSpellingForEveryFieldValue) {
    // The table paths (0-99, 0-999, 0-9999) and the general one (hour 24 from time '24:00', values wider
    // than their field, negative values) must spell alike.
    const int samples[] = {0,   1,    9,    10,    59,     60, 99,  100,       123,
                           999, 1000, 9999, 10000, 123456, -1, -42, 2147483647};
    for (int v : samples) {
        char text[sfb::kCivilTextMax];
        CivilDateTime a{2025, v, 4, v, 7, 8, v};
        EXPECT_EQ(std::string(text, sfb::write_utc_datetime(text, a)), reference_datetime(a)) << v;
        CivilDateTime b{2025, 1, v, 23, v, v, 5};
        EXPECT_EQ(std::string(text, sfb::write_utc_datetime(text, b)), reference_datetime(b)) << v;
        std::string full = reference_datetime(b);
        std::string time = full.substr(full.find('T') + 1);
        EXPECT_EQ(std::string(text, sfb::write_utc_time(text, b)), time) << v;
    }
    for (int year = 1; year <= 9999; ++year) {
        char text[sfb::kCivilTextMax];
        CivilDateTime d{year, 12, 31};
        ASSERT_EQ(std::string(text, sfb::write_date(text, d)), reference_datetime(d).substr(0, 10)) << year;
    }
    for (int ms = 0; ms < 1000; ++ms) {
        char text[sfb::kCivilTextMax];
        CivilDateTime t{1, 1, 1, 0, 0, 0, ms};
        ASSERT_EQ(std::string(text, sfb::write_utc_time(text, t)),
                  "00:00:00." + reference_padded(ms, 3) + "Z");
    }
}

TEST(SfValues, WidestValuesFitTheDocumentedRoom) {
    const int m = -2147483647 - 1;
    CivilDateTime widest{9999, m, m, m, m, m, m};
    char text[sfb::kCivilTextMax];
    std::size_t n = sfb::write_utc_datetime(text, widest);
    EXPECT_LE(n, sfb::kCivilTextMax);
    EXPECT_EQ(std::string(text, n), "9999-" + std::string("-2147483648-") +
                                        "-2147483648T-2147483648:" + "-2147483648:-2147483648.-2147483648Z");
}

TEST(SfValues, WritersRefuseYearsLikeTheAppenders) {
    char text[sfb::kCivilTextMax];
    EXPECT_THROW(sfb::write_date(text, CivilDateTime{10000, 1, 1}), sfb::Error);
    EXPECT_THROW(sfb::write_utc_datetime(text, CivilDateTime{0, 1, 1}), sfb::Error);
}

TEST(SfValues, PlainDecimalTextIsRecognised) {
    for (const char *text : {"", "0", "42", "-7", "-0.125", "123456.789", "100000000000000000000"})
        EXPECT_TRUE(sfb::is_plain_decimal(text)) << text;
    for (const char *text : {"1e+20", "-2.5E-07", "NaN", "Infinity", "-Infinity", "+1", " 1", "1,5"})
        EXPECT_FALSE(sfb::is_plain_decimal(text)) << text;
}

TEST(SfValues, PlainDecimalLeavesPlainNumbersAlone) {
    EXPECT_EQ(sfb::plain_decimal("42", "x"), "42");
    EXPECT_EQ(sfb::plain_decimal("-0.125", "x"), "-0.125");
    EXPECT_EQ(sfb::plain_decimal("123456.789", "x"), "123456.789");
}

TEST(SfValues, PlainDecimalExpandsExponents) {
    EXPECT_EQ(sfb::plain_decimal("1e+20", "x"), "100000000000000000000");
    EXPECT_EQ(sfb::plain_decimal("1.5e+20", "x"), "150000000000000000000");
    EXPECT_EQ(sfb::plain_decimal("-2.5e-07", "x"), "-0.00000025");
    EXPECT_EQ(sfb::plain_decimal("1.2345e+02", "x"), "123.45");
    EXPECT_EQ(sfb::plain_decimal("1.2345e+04", "x"), "12345");
    EXPECT_EQ(sfb::plain_decimal("9.87e-01", "x"), "0.987");
    EXPECT_EQ(sfb::plain_decimal("1e-05", "x"), "0.00001");
    EXPECT_EQ(sfb::plain_decimal("0e+00", "x"), "0");
    EXPECT_EQ(sfb::plain_decimal("-0e+00", "x"), "0");
}

TEST(SfValues, PlainDecimalRefusesNonFiniteValuesNamingThem) {
    for (const char *text : {"NaN", "Infinity", "-Infinity"}) {
        try {
            sfb::plain_decimal(text, "column \"Amount\"");
            FAIL() << text;
        } catch (const sfb::Error &e) {
            EXPECT_EQ(e.kind(), sfb::ErrorKind::DataException);
            EXPECT_NE(std::string(e.what()).find("column \"Amount\""), std::string::npos);
            EXPECT_NE(std::string(e.what()).find(text), std::string::npos);
        }
    }
}

}  // namespace
