// The options of the `salesforce` foreign data wrapper: which exist where, what values they take, and
// the defaults. The SQL validator and the worker (which reads them at job time) both come through here.
#pragma once
#include "core/core_only.h"

#include "core/url.h"

#include <string>
#include <utility>
#include <vector>

namespace sfb {

enum class OptionOwner { Wrapper, Server, UserMapping, ForeignTable };

using OptionList = std::vector<std::pair<std::string, std::string>>;

// Throws sfb::Error naming the offending option and what is expected. Never echoes the value of a
// secret option.
void validate_options(OptionOwner owner, const OptionList &options);

struct ServerSettings {
    EndpointUrl login_url;     // where the token endpoint lives
    std::string instance_url;  // optional override of the token response's instance_url ("" = use it)
    std::string api_version;   // "62.0"
};

inline constexpr const char *kDefaultLoginUrl = "https://login.salesforce.com";
inline constexpr const char *kDefaultApiVersion = "62.0";

// Validated server options with defaults applied.
ServerSettings server_settings(const OptionList &options);

}  // namespace sfb
