#include "core/fdw_options.h"

#include "core/bulk_api.h"
#include "core/error.h"
#include "core/oauth.h"

#include <algorithm>
#include <cctype>

namespace sfb {

namespace {

const char *owner_name(OptionOwner owner) {
    switch (owner) {
        case OptionOwner::Wrapper:
            return "the salesforce foreign data wrapper";
        case OptionOwner::Server:
            return "a salesforce server";
        case OptionOwner::UserMapping:
            return "a salesforce user mapping";
        case OptionOwner::ForeignTable:
            break;
    }
    return "a salesforce foreign table";
}

const std::vector<std::string_view> &server_option_names() {
    static const auto *names = new std::vector<std::string_view>{"login_url", "instance_url", "api_version"};
    return *names;
}

std::string joined(const std::vector<std::string_view> &names) {
    std::string out;
    for (auto name : names) {
        if (!out.empty())
            out += ", ";
        out += name;
    }
    return out;
}

[[noreturn]] void unknown_option(OptionOwner owner, const std::string &name,
                                 const std::vector<std::string_view> &valid) {
    std::string message = "invalid option \"" + name.substr(0, 64) + "\" for " + owner_name(owner);
    message += valid.empty() ? "; it takes no options" : "; valid options are: " + joined(valid);
    throw Error(ErrorKind::InvalidOptionName, message);
}

// sf_bulk runs ingest and query jobs, so the server's version must support both (47.0 and later).
void check_api_version(const std::string &value) {
    if (auto problem = api_version_error(value, ApiKind::Query))
        throw Error(ErrorKind::InvalidParameter, "invalid value for option \"api_version\": " + *problem);
}

ServerSettings check_server_options(const OptionList &options) {
    ServerSettings settings{parse_endpoint_url("login_url", kDefaultLoginUrl), "", kDefaultApiVersion};
    for (const auto &[name, value] : options) {
        if (name == "login_url") {
            settings.login_url = parse_endpoint_url(name, value);
        } else if (name == "instance_url") {
            EndpointUrl url = parse_endpoint_url(name, value);
            if (!url.path.empty())
                throw Error(
                    ErrorKind::InvalidParameter,
                    "invalid value for option \"instance_url\": \"" + value.substr(0, 200) +
                        "\" must be the org's base URL without a path, e.g. https://acme.my.salesforce.com");
            settings.instance_url = url.origin();
        } else if (name == "api_version") {
            check_api_version(value);
            settings.api_version = value;
        } else {
            unknown_option(OptionOwner::Server, name, server_option_names());
        }
    }
    return settings;
}

void check_user_mapping_options(const OptionList &options) {
    OptionMap map;
    for (const auto &[name, value] : options) {
        bool known = name == kAuthOption ||
                     std::find(credential_option_names().begin(), credential_option_names().end(), name) !=
                         credential_option_names().end();
        if (!known)
            unknown_option(OptionOwner::UserMapping, name, credential_option_names());
        map.emplace(name, value);
    }
    std::vector<CredentialIssue> issues = validate_credentials(map);
    if (issues.empty())
        return;
    const CredentialIssue &first = issues.front();
    ErrorKind kind = ErrorKind::InvalidParameter;
    if (first.kind == CredentialIssue::Kind::MissingAuth ||
        first.kind == CredentialIssue::Kind::MissingOption)
        kind = ErrorKind::MissingOption;
    else if (first.kind == CredentialIssue::Kind::UnknownOption)
        kind = ErrorKind::InvalidOptionName;
    throw Error(kind, first.message);
}

}  // namespace

void validate_options(OptionOwner owner, const OptionList &options) {
    switch (owner) {
        case OptionOwner::Server:
            check_server_options(options);
            return;
        case OptionOwner::UserMapping:
            check_user_mapping_options(options);
            return;
        case OptionOwner::Wrapper:
        case OptionOwner::ForeignTable:
            if (!options.empty())
                unknown_option(owner, options.front().first, {});
            return;
    }
}

ServerSettings server_settings(const OptionList &options) {
    return check_server_options(options);
}

}  // namespace sfb
