// The options of the `salesforce` foreign data wrapper: which exist where, what values they take, and
// the defaults. The SQL validator and the worker (which reads them at job time) both come through here.
#pragma once
#include "core/core_only.h"

#include "core/url.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sfb {

enum class OptionOwner { Wrapper, Server, UserMapping, ForeignTable, ForeignTableColumn };

using OptionList = std::vector<std::pair<std::string, std::string>>;

// Throws sfb::Error naming the offending option and what is expected. Never echoes the value of a
// secret option.
void validate_options(OptionOwner owner, const OptionList &options);

// Which Salesforce API a foreign-table scan reads through: Auto lets the planner choose (REST for small
// results, a Bulk API 2.0 query job for large ones), the others force one.
enum class ScanEngine { Auto, Rest, Bulk };
std::string_view to_string(ScanEngine engine);  // "auto", "rest", "bulk"
// Case-insensitive; throws sfb::Error(InvalidParameter) naming `option` and the valid values.
ScanEngine parse_scan_engine(std::string_view value, std::string_view option);

struct ServerSettings {
    EndpointUrl login_url;     // where the token endpoint lives
    std::string instance_url;  // optional override of the token response's instance_url ("" = use it)
    std::string api_version;   // "62.0"
    ScanEngine engine =
        ScanEngine::Auto;  // foreign-table scans of this server, unless a table says otherwise
};

// A salesforce foreign table's own options: `object` (the sObject it reads; default: the table's name) and
// `engine`. A column's option `field` names its Salesforce field (default: the column's name).
struct ForeignTableSettings {
    std::string object;                // "" = use the table's name
    std::optional<ScanEngine> engine;  // nullopt = the server's
};
ForeignTableSettings foreign_table_settings(const OptionList &options);
// The `field` option of a column, or "" when it has none.
std::string column_field(const OptionList &options);

inline constexpr const char *kDefaultLoginUrl = "https://login.salesforce.com";
inline constexpr const char *kDefaultApiVersion = "62.0";

// Validated server options with defaults applied.
ServerSettings server_settings(const OptionList &options);

}  // namespace sfb
