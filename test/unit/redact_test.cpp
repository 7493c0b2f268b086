// The redaction module: values, secret-named query parameters and credential headers.
#include "core/redact.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sfb {
namespace {

TEST(Redact, SecretOptionAndHeaderNames) {
    EXPECT_EQ(kSecretOptionNames.size(), 5u);
    for (std::string_view n : kSecretOptionNames) {
        EXPECT_TRUE(is_secret_option(n)) << n;
    }
    EXPECT_FALSE(is_secret_option("client_id"));
    EXPECT_FALSE(is_secret_option("Password"));  // option names are lower-case identifiers
    for (const char *h : {"Authorization", "authorization", "Proxy-Authorization", "COOKIE", "Set-Cookie"}) {
        EXPECT_TRUE(is_secret_header(h)) << h;
    }
    EXPECT_FALSE(is_secret_header("Content-Type"));
    EXPECT_FALSE(is_secret_header("Authorization2"));
}

TEST(Redact, ValuesEverywhereLongestFirst) {
    Redactor r({"abc", "00D!tokenVALUE", "tokenVALUE"});
    // The token that contains a shorter secret goes whole, not as "00D!<redacted>".
    EXPECT_EQ(r.apply("t=00D!tokenVALUE, u=tokenVALUE, abcabc"),
              "t=<redacted>, u=<redacted>, <redacted><redacted>");
    EXPECT_EQ(r.apply("nothing here"), "nothing here");
    Redactor later;
    EXPECT_TRUE(later.empty());
    later.add("");
    EXPECT_TRUE(later.empty());  // an empty value would match everywhere
    later.add("short");
    later.add("a-much-longer-short-secret");
    EXPECT_EQ(later.apply("a-much-longer-short-secret short"), "<redacted> <redacted>");
}

TEST(Redact, MinimumLength) {
    Redactor r({"pw", "long-enough"}, 4);
    EXPECT_EQ(r.apply("pw and long-enough"), "pw and <redacted>");
}

TEST(Redact, ServerTextIgnoresVeryShortSecrets) {
    const std::vector<std::string_view> secrets = {"emulator-password", "00D!tokenvalue", "pw", ""};
    EXPECT_EQ(redact_secrets("authentication failure for emulator-password / 00D!tokenvalue", secrets),
              "authentication failure for <redacted> / <redacted>");
    EXPECT_EQ(redact_secrets("pw stays", secrets), "pw stays");
    EXPECT_EQ(redact_secrets("nothing secret", {}), "nothing secret");
    EXPECT_EQ(kMinSecretLengthInServerText, 4u);
}

TEST(Redact, QueryParameters) {
    EXPECT_EQ(redact_query("a=1&access_token=00D!x&password=&flag&client_secret=s"),
              "a=1&access_token=<redacted>&password=<redacted>&flag&client_secret=<redacted>");
    EXPECT_EQ(redact_query(""), "");
    EXPECT_EQ(redact_query("q=SELECT+Id"), "q=SELECT+Id");
    EXPECT_EQ(secret_query_values("a=1&access_token=00D!x&password=&refresh_token=r1"),
              (std::vector<std::string>{"00D!x", "r1"}));  // empty values are not values to hunt for
    EXPECT_TRUE(secret_query_values("").empty());
}

TEST(Redact, HeaderLines) {
    EXPECT_EQ(redact_header_line("Authorization: Bearer 00D!secret"), "Authorization: <redacted>");
    EXPECT_EQ(redact_header_line("set-cookie : sid=1"), "set-cookie : <redacted>");
    EXPECT_EQ(redact_header_line("Content-Type: text/csv"), "Content-Type: text/csv");
    EXPECT_EQ(redact_header_line("GET /services/x?access_token=abc&a=1 HTTP/1.1"),
              "GET /services/x?access_token=<redacted>&a=1 HTTP/1.1");
    EXPECT_EQ(redact_header_line("Location: /x?access_token=abc"), "Location: /x?access_token=abc");
    EXPECT_EQ(secret_header_values("Authorization", "Bearer 00D!tok"),
              (std::vector<std::string>{"Bearer 00D!tok", "00D!tok"}));
    EXPECT_EQ(secret_header_values("Cookie", "sid=1"), (std::vector<std::string>{"sid=1"}));
    EXPECT_TRUE(secret_header_values("Authorization", "").empty());
    EXPECT_TRUE(secret_header_values("Accept", "text/csv").empty());
}

}  // namespace
}  // namespace sfb
