#include "core/retry.h"

#include "core/error.h"
#include "core/text_util.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

namespace sfb {

namespace {

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

bool contains_ci(std::string_view haystack, std::string_view needle) {
    const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (needle.size() > haystack.size()) {
        return false;
    }
    for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
        std::size_t j = 0;
        while (j < needle.size() && lower(haystack[i + j]) == lower(needle[j])) {
            ++j;
        }
        if (j == needle.size()) {
            return true;
        }
    }
    return false;
}

std::optional<unsigned> month_from_name(std::string_view name) {
    static constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (unsigned i = 0; i < kMonths.size(); ++i) {
        if (name == kMonths[i]) {
            return i + 1;
        }
    }
    return std::nullopt;
}

bool parse_uint(std::string_view s, std::size_t digits_min, std::size_t digits_max, unsigned &out) {
    if (s.size() < digits_min || s.size() > digits_max) {
        return false;
    }
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    out = v;
    return true;
}

bool parse_hms(std::string_view s, unsigned &h, unsigned &mi, unsigned &se) {
    return s.size() == 8 && s[2] == ':' && s[5] == ':' && parse_uint(s.substr(0, 2), 2, 2, h) &&
           parse_uint(s.substr(3, 2), 2, 2, mi) && parse_uint(s.substr(6, 2), 2, 2, se) && h < 24 &&
           mi < 60 && se <= 60;
}

std::vector<std::string_view> split_ws(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && s[i] == ' ') {
            ++i;
        }
        std::size_t j = i;
        while (j < s.size() && s[j] != ' ') {
            ++j;
        }
        if (j > i) {
            out.push_back(s.substr(i, j - i));
        }
        i = j;
    }
    return out;
}

}  // namespace

std::optional<std::int64_t> parse_http_date(std::string_view s) {
    const auto parts = split_ws(s);
    unsigned day = 0, year = 0, h = 0, mi = 0, se = 0;
    std::optional<unsigned> month;
    if (parts.size() == 6 && parts[0].size() == 4 && parts[0][3] == ',') {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        month = month_from_name(parts[2]);
        if (!month || !parse_uint(parts[1], 2, 2, day) || !parse_uint(parts[3], 4, 4, year) ||
            !parse_hms(parts[4], h, mi, se) || parts[5] != "GMT") {
            return std::nullopt;
        }
    } else if (parts.size() == 4 && parts[0].size() > 4 && parts[0].back() == ',') {
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (two-digit year: RFC 9110 says interpret within 50 years;
        // any Retry-After we care about is in this century)
        const std::string_view dmy = parts[1];
        if (dmy.size() != 9 || dmy[2] != '-' || dmy[6] != '-' || !parse_uint(dmy.substr(0, 2), 2, 2, day) ||
            !parse_uint(dmy.substr(7, 2), 2, 2, year) || !parse_hms(parts[2], h, mi, se) ||
            parts[3] != "GMT") {
            return std::nullopt;
        }
        month = month_from_name(dmy.substr(3, 3));
        year += 2000;
    } else if (parts.size() == 5 && parts[0].size() == 3) {
        // asctime: Sun Nov  6 08:49:37 1994
        month = month_from_name(parts[1]);
        if (!parse_uint(parts[2], 1, 2, day) || !parse_hms(parts[3], h, mi, se) ||
            !parse_uint(parts[4], 4, 4, year)) {
            return std::nullopt;
        }
    } else {
        return std::nullopt;
    }
    if (!month || day < 1 || day > 31) {
        return std::nullopt;
    }
    return days_from_civil(year, *month, day) * 86400 + h * 3600 + mi * 60 + se;
}

namespace {

bool is_backoff_status(int status) {
    switch (status) {
        case 406:
        case 420:
        case 429:
        case 500:
        case 502:
        case 503:
        case 504:
            return true;
        default:
            return false;
    }
}

// Statuses after which the server may have carried out a request before failing to answer it.
bool server_may_have_acted(int status) {
    return status == 500 || status == 502 || status == 504;
}

std::string describe(const AttemptOutcome &o) {
    if (o.transport != TransportError::None) {
        return "transport error: " + std::string(to_string(o.transport));
    }
    std::string s = "HTTP " + std::to_string(o.status);
    if (!o.error_code.empty()) {
        s += " " + o.error_code;
    }
    if (!o.error_message.empty()) {
        s += ": " + o.error_message;
    }
    return s;
}

}  // namespace

std::string_view to_string(RetryAction a) {
    switch (a) {
        case RetryAction::Success:
            return "Success";
        case RetryAction::RetryAfterBackoff:
            return "RetryAfterBackoff";
        case RetryAction::RefreshTokenThenRetryOnce:
            return "RefreshTokenThenRetryOnce";
        case RetryAction::WaitForLimitWindow:
            return "WaitForLimitWindow";
        case RetryAction::Reconcile:
            return "Reconcile";
        case RetryAction::Fail:
            return "Fail";
    }
    return "unknown";
}

bool bulk_method_is_idempotent(HttpMethod m) {
    return m == HttpMethod::Get || m == HttpMethod::Delete;
}

RetryAction classify(const AttemptOutcome &o, bool idempotent) {
    switch (o.transport) {
        case TransportError::None:
            break;
        case TransportError::ResolveFailed:
        case TransportError::ConnectFailed:
            return RetryAction::RetryAfterBackoff;
        case TransportError::Timeout:
        case TransportError::ConnectionDropped:
            return (!idempotent && o.request_sent) ? RetryAction::Reconcile : RetryAction::RetryAfterBackoff;
        case TransportError::TlsError:
        case TransportError::Cancelled:
        case TransportError::Other:
            return RetryAction::Fail;
    }
    if (o.status >= 200 && o.status < 300) {
        return RetryAction::Success;
    }
    if (o.status == 401) {
        // The REST-API-scope variant is a configuration problem a new token of the same kind cannot fix.
        if (o.error_code == "INVALID_SESSION_ID" &&
            !contains_ci(o.error_message, "not valid for use with the REST API")) {
            return RetryAction::RefreshTokenThenRetryOnce;
        }
        return RetryAction::Fail;
    }
    if (o.status == 403 && o.error_code == "REQUEST_LIMIT_EXCEEDED") {
        // "ConcurrentRequests (Concurrent API Requests) Limit exceeded." clears within seconds; anything else
        // under this code (TotalRequests) is the rolling daily allocation.
        if (contains(o.error_message, "ConcurrentRequests") || contains_ci(o.error_message, "concurrent")) {
            return RetryAction::RetryAfterBackoff;
        }
        return RetryAction::WaitForLimitWindow;
    }
    if (is_backoff_status(o.status)) {
        if (!idempotent && server_may_have_acted(o.status)) {
            return RetryAction::Reconcile;
        }
        return RetryAction::RetryAfterBackoff;
    }
    return RetryAction::Fail;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
    value = trim_ascii_space(value);
    if (value.empty()) {
        return std::nullopt;
    }
    if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        // Saturate instead of overflowing on absurd values; the policy caps the wait anyway.
        std::int64_t secs = 0;
        for (char c : value) {
            secs = secs * 10 + (c - '0');
            if (secs > 100LL * 365 * 86400) {
                secs = 100LL * 365 * 86400;
                break;
            }
        }
        return std::chrono::seconds(secs);
    }
    const auto when = parse_http_date(value);
    if (!when) {
        return std::nullopt;
    }
    const std::int64_t now_s =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    return std::chrono::seconds(std::max<std::int64_t>(0, *when - now_s));
}

RandomSource default_random_source() {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    return [engine]() { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
}

WallClock system_wall_clock() {
    return []() { return std::chrono::system_clock::now(); };
}

std::chrono::milliseconds full_jitter_backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap,
                                              int retry, double uniform01) {
    if (retry < 1) {
        retry = 1;
    }
    // base * 2^(retry-1) computed in double and clamped before converting, so large retry counts cannot
    // overflow.
    const double ceiling =
        std::min(static_cast<double>(cap.count()),
                 static_cast<double>(base.count()) * std::ldexp(1.0, std::min(retry - 1, 62)));
    double u = uniform01;
    if (!(u >= 0.0)) {  // also catches NaN
        u = 0.0;
    }
    if (u >= 1.0) {
        u = std::nextafter(1.0, 0.0);
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::floor(ceiling * u)));
}

namespace {
const RetryConfig &validated(const RetryConfig &config) {
    if (config.base.count() < 0 || config.cap < config.base || config.min_delay.count() < 0 ||
        config.max_attempts < 1 || config.max_retry_after.count() < 0 ||
        config.limit_window_wait.count() < 0) {
        throw Error(ErrorKind::InvalidParameter,
                    "invalid retry configuration: need 0 <= base <= cap, min_delay >= 0, max_attempts >= 1");
    }
    return config;
}
}  // namespace

RetryPolicy::RetryPolicy(RetryConfig config, RandomSource random, WallClock clock)
    : config_(validated(config)), random_(std::move(random)), clock_(std::move(clock)) {
    if (!random_ || !clock_) {
        throw Error(ErrorKind::InvalidParameter, "retry policy needs a random source and a clock");
    }
}

void RetryPolicy::set_config(const RetryConfig &config) {
    config_ = validated(config);
}

RetryDecision RetryPolicy::decide(const AttemptOutcome &outcome, bool idempotent, RetryState &state) const {
    ++state.attempts;
    RetryDecision d;
    d.action = classify(outcome, idempotent);
    d.reason = describe(outcome);

    switch (d.action) {
        case RetryAction::Success:
            d.reason.clear();
            return d;
        case RetryAction::Fail:
        case RetryAction::Reconcile:
            break;
        case RetryAction::RefreshTokenThenRetryOnce:
            // Exactly one refresh per logical request: a second 401 right after a fresh token means the new
            // token is rejected too, and looping would hammer the token endpoint.
            if (state.token_refreshed) {
                d.action = RetryAction::Fail;
                d.reason += " (again after refreshing the access token)";
            } else {
                state.token_refreshed = true;
            }
            break;
        case RetryAction::WaitForLimitWindow:
            d.delay = config_.limit_window_wait;
            break;
        case RetryAction::RetryAfterBackoff: {
            if (state.backoff_retries + 1 >= config_.max_attempts) {
                d.action = RetryAction::Fail;
                d.reason = "gave up after " + std::to_string(state.attempts) + " attempts; last: " + d.reason;
                break;
            }
            std::optional<std::chrono::seconds> server_wait;
            if (outcome.retry_after) {
                server_wait = parse_retry_after(*outcome.retry_after, clock_());
            }
            if (server_wait) {
                // The server knows when it will have capacity; jittering below its value would just earn
                // another 429.
                d.delay = std::min<std::chrono::milliseconds>(*server_wait, config_.max_retry_after);
            } else {
                d.delay =
                    full_jitter_backoff(config_.base, config_.cap, state.backoff_retries + 1, random_());
            }
            d.delay = std::max(d.delay, config_.min_delay);
            ++state.backoff_retries;
            break;
        }
    }
    state.last_reason = d.reason;
    return d;
}

}  // namespace sfb
