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
