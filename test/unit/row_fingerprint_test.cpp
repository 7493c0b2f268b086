#include "core/row_fingerprint.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace {

std::int64_t fingerprint(std::initializer_list<std::string_view> fields) {
    sfb::RowFingerprint f;
    for (auto field : fields)
        f.add(field);
    return f.value();
}

TEST(RowFingerprint, SameFieldsSameFingerprint) {
    EXPECT_EQ(fingerprint({"K-1", "Okafor", ""}), fingerprint({"K-1", "Okafor", ""}));
}

TEST(RowFingerprint, FieldBoundariesMatter) {
    EXPECT_NE(fingerprint({"ab", "c"}), fingerprint({"a", "bc"}));
    EXPECT_NE(fingerprint({"", "x"}), fingerprint({"x", ""}));
    EXPECT_NE(fingerprint({"x"}), fingerprint({"x", ""}));
}

TEST(RowFingerprint, ResetStartsOver) {
    sfb::RowFingerprint f;
    f.add("something");
    f.reset();
    f.add("K-1");
    EXPECT_EQ(f.value(), fingerprint({"K-1"}));
}

TEST(RowFingerprint, NoCollisionsAmongManyDistinctRows) {
    std::set<std::int64_t> seen;
    for (int i = 0; i < 200000; ++i)
        seen.insert(fingerprint({"L-" + std::to_string(i), "Acme", std::to_string(i % 7)}));
    EXPECT_EQ(seen.size(), 200000u);
}

}  // namespace
