#include "core/fdw_options.h"

#include "core/bulk_api.h"
#include "core/error.h"
#include "core/oauth.h"
#include "core/sf_names.h"
#include "core/text_util.h"

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
            return "a salesforce foreign table";
        case OptionOwner::ForeignTableColumn:
            break;
    }
    return "a column of a salesforce foreign table";
}

const std::vector<std::string_view> &server_option_names() {
    static const auto *names =
        new std::vector<std::string_view>{"login_url", "instance_url", "api_version", "engine"};
    return *names;
}

const std::vector<std::string_view> &foreign_table_option_names() {
    static const auto *names = new std::vector<std::string_view>{"object", "engine"};
    return *names;
}

const std::vector<std::string_view> &column_option_names() {
    static const auto *names = new std::vector<std::string_view>{"field"};
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
        } else if (name == "engine") {
            settings.engine = parse_scan_engine(value, name);
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

void check_column_options(const OptionList &options) {
    for (const auto &[name, value] : options) {
        if (name != "field")
            unknown_option(OptionOwner::ForeignTableColumn, name, column_option_names());
        if (auto problem = field_name_error(value))
            throw Error(ErrorKind::InvalidParameter, "invalid value for option \"field\": " + *problem);
    }
}

}  // namespace

std::string_view to_string(ScanEngine engine) {
    switch (engine) {
        case ScanEngine::Rest:
            return "rest";
        case ScanEngine::Bulk:
            return "bulk";
        case ScanEngine::Auto:
            break;
    }
    return "auto";
}

ScanEngine parse_scan_engine(std::string_view value, std::string_view option) {
    for (ScanEngine e : {ScanEngine::Auto, ScanEngine::Rest, ScanEngine::Bulk})
        if (ascii_iequals(value, to_string(e)))
            return e;
    throw Error(ErrorKind::InvalidParameter, "invalid value for option \"" + std::string(option) +
                                                 "\": " + quote_for_message(value) +
                                                 "; valid values are auto, rest, bulk");
}

ForeignTableSettings foreign_table_settings(const OptionList &options) {
    ForeignTableSettings settings;
    for (const auto &[name, value] : options) {
        if (name == "object") {
            if (auto problem = object_name_error(value))
                throw Error(ErrorKind::InvalidParameter, "invalid value for option \"object\": " + *problem);
            settings.object = value;
        } else if (name == "engine") {
            settings.engine = parse_scan_engine(value, name);
        } else {
            unknown_option(OptionOwner::ForeignTable, name, foreign_table_option_names());
        }
    }
    return settings;
}

std::string column_field(const OptionList &options) {
    check_column_options(options);
    return options.empty() ? std::string() : options.back().second;
}

void validate_options(OptionOwner owner, const OptionList &options) {
    switch (owner) {
        case OptionOwner::Server:
            check_server_options(options);
            return;
        case OptionOwner::UserMapping:
            check_user_mapping_options(options);
            return;
        case OptionOwner::ForeignTable:
            foreign_table_settings(options);
            return;
        case OptionOwner::ForeignTableColumn:
            check_column_options(options);
            return;
        case OptionOwner::Wrapper:
            if (!options.empty())
                unknown_option(owner, options.front().first, {});
            return;
    }
}

ServerSettings server_settings(const OptionList &options) {
    return check_server_options(options);
}

}  // namespace sfb
