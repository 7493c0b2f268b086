#include "core/oauth.h"

#include "core/error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>
#include <string>

namespace sfb {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

const system_clock::time_point kNow = system_clock::time_point(seconds(1795910400));

// A fresh RSA key per test binary run, generated with OpenSSL's EVP API (never a key checked into the repo).
struct TestKey {
    std::shared_ptr<EVP_PKEY> key;
    std::string pkcs8_pem;
    std::string traditional_pem;
};

std::string bio_to_string(BIO *bio) {
    char *data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

const TestKey &test_key() {
    static const TestKey *k = [] {
        auto *t = new TestKey;
        t->key.reset(EVP_RSA_gen(2048), EVP_PKEY_free);
        std::unique_ptr<BIO, decltype(&BIO_free)> a(BIO_new(BIO_s_mem()), &BIO_free);
        PEM_write_bio_PrivateKey(a.get(), t->key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        t->pkcs8_pem = bio_to_string(a.get());
        std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), &BIO_free);
        PEM_write_bio_PrivateKey_traditional(b.get(), t->key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        t->traditional_pem = bio_to_string(b.get());
        return t;
    }();
    return *k;
}

bool verify_rs256(EVP_PKEY *key, const std::string &data, const std::string &sig) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    return EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
           EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char *>(sig.data()), sig.size(),
                            reinterpret_cast<const unsigned char *>(data.data()), data.size()) == 1;
}

Credentials jwt_credentials(const std::string &login_url = "https://login.salesforce.com") {
    return credentials_from_options({{"auth", "jwt"},
                                     {"client_id", "3MVG9EXAMPLEKEY"},
                                     {"username", "etl@acme.com"},
                                     {"private_key", test_key().pkcs8_pem}},
                                    login_url);
}

// ---- options ----

TEST(OAuthOptions, FlowNames) {
    for (AuthFlow f : {AuthFlow::Password, AuthFlow::ClientCredentials, AuthFlow::Jwt, AuthFlow::RefreshToken,
                       AuthFlow::AccessToken}) {
        EXPECT_EQ(parse_auth_flow(to_string(f)), f);
    }
    EXPECT_FALSE(parse_auth_flow("JWT"));
    EXPECT_FALSE(parse_auth_flow("jwt-bearer"));
}

TEST(OAuthOptions, SecretNames) {
    for (const char *n : {"password", "client_secret", "private_key", "refresh_token", "access_token"}) {
        EXPECT_TRUE(is_secret_option(n)) << n;
    }
    EXPECT_FALSE(is_secret_option("client_id"));
    EXPECT_FALSE(is_secret_option("username"));
    EXPECT_EQ(kSecretOptionNames.size(), 5u);
}

TEST(OAuthOptions, RequiredPerFlow) {
    using V = std::vector<std::string_view>;
    EXPECT_EQ(required_options(AuthFlow::Password),
              (V{"client_id", "client_secret", "username", "password"}));
    EXPECT_EQ(required_options(AuthFlow::ClientCredentials), (V{"client_id", "client_secret"}));
    EXPECT_EQ(required_options(AuthFlow::Jwt), (V{"client_id", "username", "private_key"}));
    EXPECT_EQ(required_options(AuthFlow::RefreshToken), (V{"client_id", "refresh_token"}));
    EXPECT_EQ(optional_options(AuthFlow::RefreshToken), (V{"client_secret"}));
    EXPECT_EQ(required_options(AuthFlow::AccessToken), (V{"access_token"}));
}

TEST(OAuthOptions, ValidSetsPass) {
    EXPECT_TRUE(validate_credentials({{"auth", "password"},
                                      {"client_id", "a"},
                                      {"client_secret", "b"},
                                      {"username", "c"},
                                      {"password", "d"}})
                    .empty());
    EXPECT_TRUE(
        validate_credentials({{"auth", "client_credentials"}, {"client_id", "a"}, {"client_secret", "b"}})
            .empty());
    EXPECT_TRUE(validate_credentials({{"auth", "refresh_token"}, {"client_id", "a"}, {"refresh_token", "r"}})
                    .empty());
    EXPECT_TRUE(
        validate_credentials(
            {{"auth", "refresh_token"}, {"client_id", "a"}, {"refresh_token", "r"}, {"client_secret", "s"}})
            .empty());
    EXPECT_TRUE(validate_credentials({{"auth", "access_token"}, {"access_token", "00D!x"}}).empty());
    EXPECT_TRUE(validate_credentials({{"auth", "jwt"},
                                      {"client_id", "a"},
                                      {"username", "u"},
                                      {"private_key", test_key().traditional_pem}})
                    .empty());
}

TEST(OAuthOptions, MissingNotAllowedUnknownEmpty) {
    const auto issues = validate_credentials(AuthFlow::Jwt, {{"client_id", ""},
                                                             {"password", "hunter2-secret"},
                                                             {"colour", "blue"},
                                                             {"private_key", test_key().pkcs8_pem}});
    ASSERT_EQ(issues.size(), 4u);
    EXPECT_EQ(issues[0].kind, CredentialIssue::Kind::UnknownOption);
    EXPECT_EQ(issues[0].option, "colour");
    EXPECT_EQ(issues[1].kind, CredentialIssue::Kind::NotAllowed);
    EXPECT_EQ(issues[1].option, "password");
    EXPECT_EQ(issues[1].message, "option \"password\" is not used by auth 'jwt'; remove it");
    EXPECT_EQ(issues[2].kind, CredentialIssue::Kind::EmptyValue);
    EXPECT_EQ(issues[2].option, "client_id");
    EXPECT_EQ(issues[3].kind, CredentialIssue::Kind::MissingOption);
    EXPECT_EQ(issues[3].option, "username");
    EXPECT_EQ(issues[3].message, "option \"username\" is required for auth 'jwt'");
    for (const auto &i : issues) {
        EXPECT_EQ(i.message.find("hunter2"), std::string::npos);
    }
}

TEST(OAuthOptions, MissingOrUnknownAuth) {
    auto issues = validate_credentials(OptionMap{{"client_id", "a"}});
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_EQ(issues[0].kind, CredentialIssue::Kind::MissingAuth);
    issues = validate_credentials(OptionMap{{"auth", "saml"}});
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_EQ(issues[0].kind, CredentialIssue::Kind::UnknownFlow);
    EXPECT_NE(issues[0].message.find("client_credentials"), std::string::npos);
}

TEST(OAuthOptions, InvalidPemReportedWithoutEchoingKey) {
    const std::string bogus =
        "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIALxyz0123456789\n-----END PRIVATE KEY-----\n";
    const auto issues = validate_credentials(
        {{"auth", "jwt"}, {"client_id", "a"}, {"username", "u"}, {"private_key", bogus}});
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_EQ(issues[0].kind, CredentialIssue::Kind::InvalidValue);
    EXPECT_EQ(issues[0].message,
              "option \"private_key\" is not a valid PEM RSA private key (PKCS#8 or PKCS#1, unencrypted)");
    try {
        credentials_from_options(
            {{"auth", "jwt"}, {"client_id", "a"}, {"username", "u"}, {"private_key", bogus}},
            "https://login.salesforce.com");
        FAIL();
    } catch (const Error &e) {
        EXPECT_EQ(std::string(e.what()).find("TOPSECRET"), std::string::npos) << e.what();
        EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
    }
}

TEST(OAuthOptions, CredentialsFromOptionsErrorsHideSecrets) {
    try {
        credentials_from_options(
            {{"auth", "password"}, {"client_id", "a"}, {"client_secret", "SECRETVALUE42"}},
            "https://login.salesforce.com");
        FAIL();
    } catch (const Error &e) {
        const std::string msg = e.what();
        EXPECT_EQ(e.kind(), ErrorKind::MissingOption);
        EXPECT_NE(msg.find("\"username\" is required"), std::string::npos) << msg;
        EXPECT_NE(msg.find("\"password\" is required"), std::string::npos) << msg;
        EXPECT_EQ(msg.find("SECRETVALUE42"), std::string::npos) << msg;
    }
    EXPECT_THROW(credentials_from_options({{"auth", "access_token"}, {"access_token", "t"}}, "ftp://x"),
                 Error);
}

TEST(OAuthOptions, DescribeRedacts) {
    Credentials c = credentials_from_options({{"auth", "password"},
                                              {"client_id", "3MVG9EXAMPLEKEY"},
                                              {"client_secret", "7C1EXAMPLESECRET"},
                                              {"username", "etl@acme.com"},
                                              {"password", "s3cretTOKEN123"}},
                                             "https://login.salesforce.com/");
    const std::string d = describe(c);
    EXPECT_EQ(d,
              "flow=password login_url=https://login.salesforce.com client_id=3MVG9EXAMPLEKEY "
              "username=etl@acme.com "
              "client_secret=<redacted> password=<redacted>");
    const std::string k = describe(jwt_credentials());
    EXPECT_EQ(k.find("BEGIN"), std::string::npos);
    EXPECT_NE(k.find("private_key=<redacted>"), std::string::npos);
}

TEST(OAuthOptions, RedactSecrets) {
    Credentials c;
    c.client_secret = "7C1EXAMPLESECRET";
    c.password = "pw";  // too short to redact safely
    EXPECT_EQ(redact_secrets("bad secret 7C1EXAMPLESECRET and 7C1EXAMPLESECRET", c),
              "bad secret <redacted> and <redacted>");
    EXPECT_EQ(redact_secrets("pw stays", c), "pw stays");
    EXPECT_EQ(redact_secrets("tok 00D!abcdef", c, "00D!abcdef"), "tok <redacted>");
}

TEST(OAuthOptions, RedactSecretList) {
    const std::vector<std::string_view> secrets = {"emulator-password", "00D!tokenvalue", "pw"};
    EXPECT_EQ(redact_secrets("authentication failure for emulator-password / 00D!tokenvalue", secrets),
              "authentication failure for <redacted> / <redacted>");
    EXPECT_EQ(redact_secrets("pw stays", secrets), "pw stays");
    EXPECT_EQ(redact_secrets("nothing secret", std::vector<std::string_view>{}), "nothing secret");
}

// ---- encoding ----

TEST(OAuthEncoding, FormUrlencodeGolden) {
    EXPECT_EQ(form_urlencode("etl@acme.com"), "etl%40acme.com");
    EXPECT_EQ(form_urlencode("urn:ietf:params:oauth:grant-type:jwt-bearer"),
              "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
    EXPECT_EQ(form_urlencode("a b+c&d=e/f?g%h"), "a%20b%2Bc%26d%3De%2Ff%3Fg%25h");
    EXPECT_EQ(form_urlencode("AZaz09-._~"), "AZaz09-._~");
    EXPECT_EQ(form_urlencode("*!'()"), "%2A%21%27%28%29");
    EXPECT_EQ(form_urlencode("\xC3\xA9"), "%C3%A9");
    EXPECT_EQ(form_urlencode(std::string("\0\n", 2)), "%00%0A");
    EXPECT_EQ(form_body({{"a", "1"}, {"b c", "x&y"}}), "a=1&b%20c=x%26y");
}

TEST(OAuthEncoding, Base64) {
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
    EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
    EXPECT_EQ(base64url_encode(R"({"alg":"RS256"})"), "eyJhbGciOiJSUzI1NiJ9");
    EXPECT_EQ(base64url_decode("-_8"), "\xfb\xff");
    EXPECT_EQ(base64url_decode("Zm9vYg=="), "foob");
    EXPECT_THROW(base64url_decode("a"), Error);
    EXPECT_THROW(base64url_decode("ab+c"), Error);
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all += static_cast<char>(i);
    }
    EXPECT_EQ(base64url_decode(base64url_encode(all)), all);
}

// ---- token requests ----

TEST(OAuthRequest, PasswordMatchesDocExample) {
    const Credentials c = credentials_from_options({{"auth", "password"},
                                                    {"client_id", "3MVG9EXAMPLEKEY"},
                                                    {"client_secret", "7C1EXAMPLESECRET"},
                                                    {"username", "etl@acme.com"},
                                                    {"password", "s3cretTOKEN123"}},
                                                   "https://login.salesforce.com");
    const TokenRequest r = build_token_request(c, kNow);
    EXPECT_EQ(r.url, "https://login.salesforce.com/services/oauth2/token");
    EXPECT_EQ(
        r.body,
        "grant_type=password&client_id=3MVG9EXAMPLEKEY&client_secret=7C1EXAMPLESECRET&username=etl%40acme.com"
        "&password=s3cretTOKEN123");
    ASSERT_EQ(r.headers.size(), 2u);
    EXPECT_EQ(r.headers[0],
              (std::pair<std::string, std::string>{"Content-Type", "application/x-www-form-urlencoded"}));
    EXPECT_EQ(r.describe(), "POST https://login.salesforce.com/services/oauth2/token grant_type=password");
}

TEST(OAuthRequest, PasswordWithSpecialCharacters) {
    Credentials c;
    c.flow = AuthFlow::Password;
    c.login_url = "https://login.salesforce.com";
    c.client_id = "id";
    c.client_secret = "s";
    c.username = "a+b@x.com";
    c.password = "p&ss=w rd%";
    EXPECT_EQ(build_token_request(c, kNow).body,
              "grant_type=password&client_id=id&client_secret=s&username=a%2Bb%40x.com&password=p%26ss%3Dw%"
              "20rd%25");
}

TEST(OAuthRequest, ClientCredentialsBasicMatchesDocExample) {
    const Credentials c = credentials_from_options({{"auth", "client_credentials"},
                                                    {"client_id", "3MVG9EXAMPLEKEY"},
                                                    {"client_secret", "7C1EXAMPLESECRET"}},
                                                   "https://acme.my.salesforce.com");
    const TokenRequest r = build_token_request(c, kNow);
    EXPECT_EQ(r.url, "https://acme.my.salesforce.com/services/oauth2/token");
    EXPECT_EQ(r.body, "grant_type=client_credentials");
    ASSERT_EQ(r.headers.size(), 3u);
    EXPECT_EQ(r.headers[2].first, "Authorization");
    EXPECT_EQ(r.headers[2].second, "Basic M01WRzlFWEFNUExFS0VZOjdDMUVYQU1QTEVTRUNSRVQ=");
    EXPECT_EQ(r.describe().find("7C1EXAMPLESECRET"), std::string::npos);

    Credentials body_auth = c;
    body_auth.client_auth_basic = false;
    EXPECT_EQ(build_token_request(body_auth, kNow).body,
              "grant_type=client_credentials&client_id=3MVG9EXAMPLEKEY&client_secret=7C1EXAMPLESECRET");
}

TEST(OAuthRequest, RefreshToken) {
    const Credentials c = credentials_from_options(
        {{"auth", "refresh_token"}, {"client_id", "cid"}, {"refresh_token", "5Aep861.rt/x=="}},
        "https://test.salesforce.com");
    EXPECT_EQ(build_token_request(c, kNow).body,
              "grant_type=refresh_token&refresh_token=5Aep861.rt%2Fx%3D%3D&client_id=cid");
    const Credentials s = credentials_from_options(
        {{"auth", "refresh_token"}, {"client_id", "cid"}, {"refresh_token", "rt"}, {"client_secret", "cs"}},
        "https://test.salesforce.com");
    EXPECT_EQ(build_token_request(s, kNow).body,
              "grant_type=refresh_token&refresh_token=rt&client_id=cid&client_secret=cs");
}

TEST(OAuthRequest, AccessTokenMakesNoCall) {
    const Credentials c = credentials_from_options({{"auth", "access_token"}, {"access_token", "00D!tok"}},
                                                   "https://acme.my.salesforce.com/");
    EXPECT_FALSE(needs_token_request(c.flow));
    EXPECT_THROW(build_token_request(c, kNow), Error);
    const TokenResponse t = static_token_response(c);
    EXPECT_EQ(t.access_token, "00D!tok");
    EXPECT_EQ(t.instance_url, "https://acme.my.salesforce.com");
}

// ---- JWT ----

TEST(OAuthJwt, AudienceRule) {
    EXPECT_EQ(jwt_audience_for("https://login.salesforce.com"), "https://login.salesforce.com");
    EXPECT_EQ(jwt_audience_for("https://LOGIN.salesforce.com/"), "https://login.salesforce.com");
    EXPECT_EQ(jwt_audience_for("https://test.salesforce.com"), "https://test.salesforce.com");
    EXPECT_EQ(jwt_audience_for("https://acme.my.salesforce.com"), "https://login.salesforce.com");
    EXPECT_EQ(jwt_audience_for("https://acme-dev-ed.develop.my.salesforce.com"),
              "https://login.salesforce.com");
    EXPECT_EQ(jwt_audience_for("https://acme--uat.sandbox.my.salesforce.com"), "https://test.salesforce.com");
    EXPECT_EQ(jwt_audience_for("https://acme--uat.my.salesforce.com"), "https://test.salesforce.com");
    EXPECT_EQ(jwt_audience_for("https://x.scratch.my.salesforce.com"), "https://test.salesforce.com");
    EXPECT_EQ(jwt_audience_for("http://127.0.0.1:8443/"), "http://127.0.0.1:8443");
    EXPECT_EQ(jwt_audience_for("https://community.acme.com/partners"), "https://community.acme.com/partners");
}

TEST(OAuthJwt, SignedAssertionVerifiesWithPublicKey) {
    const Credentials c = jwt_credentials();
    const TokenRequest r = build_token_request(c, kNow);
    const std::string prefix = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
    ASSERT_EQ(r.body.substr(0, prefix.size()), prefix);
    const std::string assertion = r.body.substr(prefix.size());
    ASSERT_EQ(assertion.find_first_of("%=+/"), std::string::npos)
        << "base64url without padding needs no escaping";

    const std::size_t d1 = assertion.find('.');
    const std::size_t d2 = assertion.find('.', d1 + 1);
    ASSERT_NE(d2, std::string::npos);
    EXPECT_EQ(base64url_decode(assertion.substr(0, d1)), R"({"alg":"RS256"})");
    const auto claims = nlohmann::json::parse(base64url_decode(assertion.substr(d1 + 1, d2 - d1 - 1)));
    EXPECT_EQ(claims.at("iss"), "3MVG9EXAMPLEKEY");
    EXPECT_EQ(claims.at("sub"), "etl@acme.com");
    EXPECT_EQ(claims.at("aud"), "https://login.salesforce.com");
    ASSERT_TRUE(claims.at("exp").is_number_integer());
    EXPECT_EQ(claims.at("exp").get<std::int64_t>(), 1795910400 + 180);

    const std::string signature = base64url_decode(assertion.substr(d2 + 1));
    EXPECT_EQ(signature.size(), 256u);
    EXPECT_TRUE(verify_rs256(test_key().key.get(), assertion.substr(0, d2), signature));
    std::string tampered = assertion.substr(0, d2);
    tampered[d1 + 3] ^= 1;
    EXPECT_FALSE(verify_rs256(test_key().key.get(), tampered, signature));
    EXPECT_EQ(r.describe().find(assertion.substr(0, 20)), std::string::npos);
}

TEST(OAuthJwt, AudienceOverrideAndSandbox) {
    Credentials c = jwt_credentials("https://acme--uat.sandbox.my.salesforce.com");
    std::string a = build_jwt_assertion(c, kNow);
    auto claims =
        nlohmann::json::parse(base64url_decode(a.substr(a.find('.') + 1, a.rfind('.') - a.find('.') - 1)));
    EXPECT_EQ(claims.at("aud"), "https://test.salesforce.com");
    c.jwt_audience = "https://community.acme.com";
    a = build_jwt_assertion(c, kNow, seconds(60));
    claims =
        nlohmann::json::parse(base64url_decode(a.substr(a.find('.') + 1, a.rfind('.') - a.find('.') - 1)));
    EXPECT_EQ(claims.at("aud"), "https://community.acme.com");
    EXPECT_EQ(claims.at("exp").get<std::int64_t>(), 1795910400 + 60);
    EXPECT_THROW(build_jwt_assertion(c, kNow, seconds(600)), Error);
}

TEST(OAuthJwt, TraditionalPemAndEscapedNewlinesLoad) {
    const RsaPrivateKey k = RsaPrivateKey::from_pem(test_key().traditional_pem);
    EXPECT_EQ(k.bits(), 2048);
    const std::string sig = k.sign_rs256("hello");
    EXPECT_TRUE(verify_rs256(test_key().key.get(), "hello", sig));

    std::string escaped;
    for (char ch : test_key().pkcs8_pem) {
        escaped += ch == '\n' ? std::string("\\n") : std::string(1, ch);
    }
    EXPECT_TRUE(is_valid_rsa_private_key_pem(escaped));
    EXPECT_NE(test_key().traditional_pem.find("BEGIN RSA PRIVATE KEY"), std::string::npos);
    EXPECT_NE(test_key().pkcs8_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
}

TEST(OAuthJwt, BadKeysRejectedWithoutEcho) {
    // A valid PEM with one character of the base64 body changed, so the marker is a real fragment of the key.
    std::string corrupted = test_key().pkcs8_pem;
    const std::size_t body = corrupted.find('\n') + 40;
    const std::string fragment = corrupted.substr(body, 24);
    corrupted[body + 30] = corrupted[body + 30] == 'A' ? 'B' : 'A';
    corrupted.erase(body + 100, 200);
    for (const std::string &pem :
         {corrupted, std::string("not a key at all SECRETSECRET"),
          std::string("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqSECRETSECRET\n-----END ENCRYPTED "
                      "PRIVATE KEY-----\n"),
          std::string()}) {
        try {
            RsaPrivateKey::from_pem(pem);
            FAIL() << "accepted a bad key";
        } catch (const Error &e) {
            const std::string msg = e.what();
            EXPECT_EQ(msg.rfind("option \"private_key\" is not a valid PEM RSA private key", 0), 0u) << msg;
            EXPECT_EQ(msg.find("SECRETSECRET"), std::string::npos) << msg;
            EXPECT_EQ(msg.find(fragment), std::string::npos) << msg;
            EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
        }
    }
}

TEST(OAuthJwt, NonRsaKeyRejected) {
    std::shared_ptr<EVP_PKEY> ec(EVP_EC_gen("P-256"), EVP_PKEY_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), &BIO_free);
    PEM_write_bio_PrivateKey(b.get(), ec.get(), nullptr, nullptr, 0, nullptr, nullptr);
    try {
        RsaPrivateKey::from_pem(bio_to_string(b.get()));
        FAIL();
    } catch (const Error &e) {
        EXPECT_NE(std::string(e.what()).find("not an RSA key"), std::string::npos);
    }
}

// ---- token responses ----

TEST(OAuthResponse, ParsesDocExample) {
    const std::string body = R"({
  "access_token": "00DHs00000Q7xPl!AQEAQFakeTokenValue.2p9",
  "signature": "n4YwK9v8ZcKc0bFvPq0b6rR8m6l6TtJf0oYw3T1R2sU=",
  "scope": "api",
  "instance_url": "https://acme.my.salesforce.com",
  "id": "https://login.salesforce.com/id/00DHs00000Q7xPlMAJ/005Hs00000Lm3NzIAJ",
  "token_type": "Bearer",
  "issued_at": "1762273207123"
})";
    const TokenResponse t = parse_token_response(body);
    EXPECT_EQ(t.access_token, "00DHs00000Q7xPl!AQEAQFakeTokenValue.2p9");
    EXPECT_EQ(t.instance_url, "https://acme.my.salesforce.com");
    EXPECT_EQ(t.org_id, "00DHs00000Q7xPlMAJ");
    EXPECT_EQ(t.user_id, "005Hs00000Lm3NzIAJ");
    EXPECT_EQ(t.token_type, "Bearer");
    EXPECT_EQ(t.scope, "api");
    EXPECT_EQ(t.issued_at, "1762273207123");
    EXPECT_EQ(t.signature, "n4YwK9v8ZcKc0bFvPq0b6rR8m6l6TtJf0oYw3T1R2sU=");
}

TEST(OAuthResponse, JwtShapeWithoutOptionalMembers) {
    const TokenResponse t = parse_token_response(
        R"({"access_token":"00D!x","scope":"api","instance_url":"http://127.0.0.1:8443/","token_type":"Bearer",)"
        R"("id":"http://127.0.0.1:8443/id/00DHs00000Q7xPl/005Hs00000Lm3Nz","extra":{"a":1}})");
    EXPECT_EQ(t.instance_url, "http://127.0.0.1:8443");
    EXPECT_EQ(t.org_id, "00DHs00000Q7xPl");
    EXPECT_EQ(t.user_id, "005Hs00000Lm3Nz");
    EXPECT_FALSE(t.issued_at);
    EXPECT_FALSE(t.signature);
    // issued_at as a number from a wrapper is kept as its text.
    EXPECT_EQ(parse_token_response(
                  R"({"access_token":"t1","instance_url":"https://a.b","issued_at":1762273207123})")
                  .issued_at,
              "1762273207123");
}

TEST(OAuthResponse, MalformedResponsesNeverEchoTheToken) {
    const std::string token = "00DHs00000Q7xPl!AQEAQSuperSecretToken";
    for (const std::string &body : {R"({"access_token":")" + token + R"(", "instance_url": )",  // truncated
                                    R"({"access_token":")" + token + R"(")",  // no instance_url
                                    R"({"access_token":")" + token + R"(","instance_url":"not a url"})",
                                    "[\"" + token + "\"]", token, std::string()}) {
        try {
            parse_token_response(body);
            FAIL() << "accepted: " << body.size();
        } catch (const OAuthError &e) {
            EXPECT_EQ(std::string(e.what()).find("SuperSecret"), std::string::npos) << e.what();
            EXPECT_EQ(e.error(), "invalid_token_response");
            EXPECT_EQ(e.kind(), ErrorKind::ExternalService);
        }
    }
}

TEST(OAuthResponse, ErrorBodyFromDoc) {
    const OAuthError e =
        parse_token_error(400, R"({"error":"invalid_grant","error_description":"authentication failure"})");
    EXPECT_STREQ(e.what(), "invalid_grant: authentication failure");
    EXPECT_EQ(e.http_status(), 400);
    EXPECT_EQ(e.error(), "invalid_grant");
    EXPECT_EQ(e.description(), "authentication failure");
    EXPECT_FALSE(e.retryable());
    EXPECT_STREQ(parse_token_error(
                     401, R"({"error_description":"client identifier invalid","error":"invalid_client_id"})")
                     .what(),
                 "invalid_client_id: client identifier invalid");
}

TEST(OAuthResponse, NonOAuthErrorBodies) {
    const OAuthError html =
        parse_token_error(503, "<html><body>Service Unavailable s3cretTOKEN</body></html>");
    EXPECT_STREQ(html.what(), "token endpoint returned HTTP 503 without an OAuth error object");
    EXPECT_TRUE(html.retryable());
    EXPECT_STREQ(parse_token_error(502, "").what(), "token endpoint returned HTTP 502 with an empty body");
    EXPECT_STREQ(parse_token_error(400, R"([{"errorCode":"X","message":"y"}])").what(),
                 "token endpoint returned HTTP 400 without an OAuth error object");
}

TEST(OAuthResponse, EchoedSecretInDescriptionIsRedacted) {
    Credentials c;
    c.flow = AuthFlow::Password;
    c.password = "s3cretTOKEN123";
    const OAuthError e = parse_token_error(
        400, R"({"error":"invalid_grant","error_description":"bad password s3cretTOKEN123"})", &c);
    EXPECT_STREQ(e.what(), "invalid_grant: bad password <redacted>");
}

}  // namespace
}  // namespace sfb
