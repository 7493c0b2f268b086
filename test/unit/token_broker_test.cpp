#include "core/token_broker.h"

#include <gtest/gtest.h>

#include <string>

namespace sfb {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

const OrgKey kOrg{"acme", 10};
const OrgKey kOtherRole{"acme", 11};

OrgCredentials password_credentials(std::string password = "hunter2-Secret", std::string instance_url = "") {
    OrgCredentials c;
    c.server.login_url = parse_endpoint_url("login_url", "https://login.example.com");
    c.server.instance_url = std::move(instance_url);
    c.server.api_version = "62.0";
    c.mapping_options = {{"auth", "password"},
                         {"client_id", "3MVGclient"},
                         {"client_secret", "client-Secret-1"},
                         {"username", "etl@acme.com"},
                         {"password", std::move(password)}};
    c.digest = options_digest(c.mapping_options, {{"login_url", "https://login.example.com"}});
    return c;
}

HttpResponse answer(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

HttpResponse token_answer(const std::string &token) {
    return answer(200,
                  R"({"access_token":")" + token +
                      R"(","instance_url":"https://acme.my.example.com","id":"https://login.example.com/id/)"
                      R"(00D000000000001/005000000000001","token_type":"Bearer","issued_at":"1"})");
}

HttpResponse transport_failure(TransferError error, std::string message) {
    HttpResponse r;
    r.error = error;
    r.error_message = std::move(message);
    return r;
}

class TokenBrokerTest : public ::testing::Test {
  protected:
    TokenBrokerConfig config() {
        TokenBrokerConfig c;
        c.retry.max_attempts = 3;
        c.retry.base = std::chrono::milliseconds(1000);
        c.retry.cap = std::chrono::milliseconds(8000);
        c.request_timeout = std::chrono::milliseconds(1234);
        return c;
    }
    // random() == 0.5: the backoff of retry n is half of min(cap, base * 2^(n-1)).
    TokenBroker broker{config(), [] { return 0.5; },
                       [] { return system_clock::time_point(seconds(1795910400)); }};
};

TEST_F(TokenBrokerTest, UnknownOrgIsMissingAndWantsCredentials) {
    EXPECT_EQ(broker.state(kOrg), TokenState::Missing);
    EXPECT_TRUE(broker.wants_credentials(kOrg, 0));
    EXPECT_EQ(broker.access_token(kOrg), "");
    EXPECT_FALSE(broker.next_retry_ms());
}

TEST_F(TokenBrokerTest, PasswordFlowFetchesOnceAndIsReady) {
    std::optional<HttpRequest> request = broker.begin_fetch(kOrg, password_credentials());
    ASSERT_TRUE(request);
    EXPECT_EQ(request->method, HttpMethod::Post);
    EXPECT_EQ(request->url, "https://login.example.com/services/oauth2/token");
    EXPECT_EQ(request->idempotent, std::optional<bool>(true));
    EXPECT_EQ(request->timeouts.total.count(), 1234);
    ASSERT_TRUE(request->body);
    // The form body carries the password, so it is itself scrubbed from any error text.
    EXPECT_NE(std::find(request->secrets.begin(), request->secrets.end(), *request->body),
              request->secrets.end());
    EXPECT_NE(std::find(request->secrets.begin(), request->secrets.end(), "hunter2-Secret"),
              request->secrets.end());
    EXPECT_EQ(broker.state(kOrg), TokenState::Fetching);
    EXPECT_FALSE(broker.wants_credentials(kOrg, 0));

    EXPECT_FALSE(broker.on_response(kOrg, token_answer("00D000000000001!AR.token-1"), 10));
    EXPECT_EQ(broker.state(kOrg), TokenState::Ready);
    EXPECT_EQ(broker.access_token(kOrg), "00D000000000001!AR.token-1");
    EXPECT_EQ(broker.instance_url(kOrg), "https://acme.my.example.com");
    EXPECT_FALSE(broker.wants_credentials(kOrg, 10));
    const std::vector<std::string> &secrets = broker.secrets(kOrg);
    EXPECT_NE(std::find(secrets.begin(), secrets.end(), "00D000000000001!AR.token-1"), secrets.end());
    // Another role of the same server is another org.
    EXPECT_EQ(broker.state(kOtherRole), TokenState::Missing);
}

TEST_F(TokenBrokerTest, ServerInstanceUrlOverridesTheTokenResponse) {
    ASSERT_TRUE(
        broker.begin_fetch(kOrg, password_credentials("hunter2-Secret", "https://forced.example.com")));
    broker.on_response(kOrg, token_answer("tok-1"), 0);
    EXPECT_EQ(broker.instance_url(kOrg), "https://forced.example.com");
}

TEST_F(TokenBrokerTest, AccessTokenFlowIsReadyWithoutARequest) {
    OrgCredentials c = password_credentials();
    c.mapping_options = {{"auth", "access_token"}, {"access_token", "00Dstatic!token"}};
    EXPECT_FALSE(broker.begin_fetch(kOrg, c));
    EXPECT_EQ(broker.state(kOrg), TokenState::Ready);
    EXPECT_EQ(broker.access_token(kOrg), "00Dstatic!token");
    EXPECT_EQ(broker.instance_url(kOrg), "https://login.example.com");
}

TEST_F(TokenBrokerTest, InvalidCredentialsFailWithoutEchoingSecrets) {
    OrgCredentials c = password_credentials();
    c.mapping_options.erase("username");
    EXPECT_FALSE(broker.begin_fetch(kOrg, c));
    EXPECT_EQ(broker.state(kOrg), TokenState::Failed);
    EXPECT_EQ(broker.failure(kOrg).code, "AUTHENTICATION");
    EXPECT_NE(broker.failure(kOrg).message.find("username"), std::string::npos);
    EXPECT_EQ(broker.failure(kOrg).message.find("hunter2"), std::string::npos);
    EXPECT_FALSE(broker.wants_credentials(kOrg, 0));
}

TEST_F(TokenBrokerTest, RefusedLoginIsFinalAndRedacted) {
    ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
    EXPECT_FALSE(broker.on_response(
        kOrg, answer(400, R"({"error":"invalid_grant","error_description":"bad hunter2-Secret"})"), 5));
    EXPECT_EQ(broker.state(kOrg), TokenState::Failed);
    EXPECT_EQ(broker.failure(kOrg).code, "invalid_grant");
    EXPECT_EQ(broker.failure(kOrg).message.find("hunter2-Secret"), std::string::npos);
    EXPECT_NE(broker.failure(kOrg).message.find("<redacted>"), std::string::npos);
    EXPECT_FALSE(broker.wants_credentials(kOrg, 1000000));
}

TEST_F(TokenBrokerTest, TransientFailuresBackOffThroughTheRetryPolicyThenFail) {
    ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
    std::optional<std::string> note = broker.on_response(kOrg, answer(503, "<html>down</html>"), 1000);
    ASSERT_TRUE(note);
    // retry 1: uniform 0.5 of min(8 s, 1 s) = 500 ms
    EXPECT_EQ(*note,
              "waiting for an access token (attempt 1 of 3, next in 1 s): the token endpoint answered "
              "HTTP 503");
    EXPECT_EQ(broker.state(kOrg), TokenState::Missing);
    EXPECT_FALSE(broker.wants_credentials(kOrg, 1499));
    EXPECT_TRUE(broker.wants_credentials(kOrg, 1500));
    EXPECT_EQ(broker.next_retry_ms(), std::optional<std::int64_t>(1500));

    ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
    EXPECT_FALSE(broker.next_retry_ms());
    note = broker.on_response(kOrg, transport_failure(TransferError::ConnectFailed, "could not connect to X"),
                              2000);
    ASSERT_TRUE(note);
    // retry 2: 0.5 of 2 s
    EXPECT_EQ(*note, "waiting for an access token (attempt 2 of 3, next in 1 s): could not connect to X");
    EXPECT_TRUE(broker.wants_credentials(kOrg, 3000));

    ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
    EXPECT_FALSE(broker.on_response(kOrg, answer(503, "<html>down</html>"), 4000));
    EXPECT_EQ(broker.state(kOrg), TokenState::Failed);
    EXPECT_EQ(broker.failure(kOrg).message, "token endpoint returned HTTP 503 without an OAuth error object");
}

TEST_F(TokenBrokerTest, NewSettingsApplyToTheNextRequestAndDecision) {
    // A reload lowers sf_bulk.max_retries while a fetch is backing off: the budget counted so far stands
    // and the next failure is judged by the new maximum.
    ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
    ASSERT_TRUE(broker.on_response(kOrg, answer(503, ""), 1000));
    TokenBrokerConfig lowered = config();
    lowered.retry.max_attempts = 2;
    lowered.request_timeout = std::chrono::milliseconds(777);
    broker.set_config(lowered);
    std::optional<HttpRequest> request = broker.begin_fetch(kOrg, password_credentials());
    ASSERT_TRUE(request);
    EXPECT_EQ(request->timeouts.total.count(), 777);
    EXPECT_FALSE(broker.on_response(kOrg, answer(503, ""), 3000));
    EXPECT_EQ(broker.state(kOrg), TokenState::Failed);

    TokenBrokerConfig invalid = config();
    invalid.retry.max_attempts = 0;
    EXPECT_THROW(broker.set_config(invalid), Error);
}

TEST_F(TokenBrokerTest, RetryAfterIsHonoured) {
    ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
    HttpResponse r = answer(429, "");
    r.headers.add("Retry-After", "7");
    ASSERT_TRUE(broker.on_response(kOrg, r, 1000));
    EXPECT_EQ(broker.next_retry_ms(), std::optional<std::int64_t>(8000));
}

TEST_F(TokenBrokerTest, UnreachableEndpointAndTlsFailures) {
    ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
    EXPECT_FALSE(broker.on_response(
        kOrg, transport_failure(TransferError::TlsError, "POST https://login.example.com/…: SSL problem"),
        0));
    EXPECT_EQ(broker.state(kOrg), TokenState::Failed);
    EXPECT_EQ(broker.failure(kOrg).code, "TOKEN_ENDPOINT_UNREACHABLE");
    EXPECT_EQ(broker.failure(kOrg).message, "POST https://login.example.com/…: SSL problem");
}

TEST_F(TokenBrokerTest, SuccessResetsTheRetryBudget) {
    for (int round = 0; round < 4; ++round) {
        ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
        ASSERT_TRUE(broker.on_response(kOrg, answer(503, ""), 0)) << round;
        ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
        broker.on_response(kOrg, token_answer("tok"), 0);
        ASSERT_EQ(broker.state(kOrg), TokenState::Ready);
        broker.token_refused(kOrg, "tok");
    }
}

TEST_F(TokenBrokerTest, RefusedTokenIsDroppedOnceForManyRefusals) {
    ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
    broker.on_response(kOrg, token_answer("tok-1"), 0);
    broker.token_refused(kOrg, "tok-1");
    EXPECT_EQ(broker.state(kOrg), TokenState::Missing);
    EXPECT_TRUE(broker.wants_credentials(kOrg, 0));
    ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
    broker.on_response(kOrg, token_answer("tok-2"), 0);
    // A second call that was sent with the old token is refused later: the new token stays.
    broker.token_refused(kOrg, "tok-1");
    EXPECT_EQ(broker.state(kOrg), TokenState::Ready);
    EXPECT_EQ(broker.access_token(kOrg), "tok-2");
}

TEST_F(TokenBrokerTest, RecheckKeepsAnUnchangedOrgAndForgetsAChangedOne) {
    OrgCredentials c = password_credentials();
    ASSERT_TRUE(broker.begin_fetch(kOrg, c));
    broker.on_response(kOrg, token_answer("tok-1"), 0);
    broker.recheck(kOrg, c.digest);
    EXPECT_EQ(broker.state(kOrg), TokenState::Ready);

    OrgCredentials changed = password_credentials("another-Password");
    changed.digest = options_digest(changed.mapping_options, {{"login_url", "https://login.example.com"}});
    ASSERT_NE(changed.digest, c.digest);
    broker.recheck(kOrg, changed.digest);
    EXPECT_EQ(broker.state(kOrg), TokenState::Missing);
    EXPECT_EQ(broker.instance_url(kOrg), "");
    // The old token is still scrubbed from text that may mention it.
    const std::vector<std::string> &secrets = broker.secrets(kOrg);
    EXPECT_NE(std::find(secrets.begin(), secrets.end(), "tok-1"), secrets.end());
}

TEST_F(TokenBrokerTest, RecheckRetriesAFailureButNotAFetchInFlight) {
    broker.fail(kOrg, "AUTHENTICATION", "user mapping not found");
    EXPECT_EQ(broker.state(kOrg), TokenState::Failed);
    EXPECT_EQ(broker.failure(kOrg).message, "user mapping not found");
    broker.recheck(kOrg, 0);
    EXPECT_EQ(broker.state(kOrg), TokenState::Missing);

    ASSERT_TRUE(broker.begin_fetch(kOrg, password_credentials()));
    broker.recheck(kOrg, 42);
    EXPECT_EQ(broker.state(kOrg), TokenState::Fetching);
}

TEST(OptionsDigest, DependsOnEveryOptionAndWhereItComesFrom) {
    std::size_t base = options_digest({{"a", "1"}}, {{"b", "2"}});
    EXPECT_EQ(base, options_digest({{"a", "1"}}, {{"b", "2"}}));
    EXPECT_NE(base, options_digest({{"a", "1"}}, {{"b", "3"}}));
    EXPECT_NE(base, options_digest({{"a", "2"}}, {{"b", "2"}}));
    EXPECT_NE(options_digest({{"a", "1"}}, {}), options_digest({}, {{"a", "1"}}));
}

}  // namespace
}  // namespace sfb
