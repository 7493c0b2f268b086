// One page of a Salesforce REST query answer (GET /services/data/vNN.N/query?q=..., .../queryAll?q=..., or a
// nextRecordsUrl; docs/soql-and-rest.md §1.2-§1.4), read into the text values the foreign-data-wrapper scan
// hands to PostgreSQL's input functions, one page at a time.
//
// The page is parsed in one pass with nlohmann's SAX interface: no document tree is built, and numbers are
// kept as the exact text of their JSON token (1.2345678E7, 12345678901234567890.123), never as a double.
// Error answers (HTTP 4xx/5xx, a JSON array of {message, errorCode}) are bulk_api.h's parse_api_error's.
#pragma once
#include "core/core_only.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sfb {

// One selected SOQL column: its path of names as in the SELECT list, e.g. {"Name"}, {"Owner", "Email"} or
// {"Account", "Owner", "Name"} (SoqlField::parts of soql_select.h). Matched against the JSON member names
// ASCII case-insensitively: Salesforce spells them as in the schema, the SELECT may spell them otherwise.
using SoqlPath = std::vector<std::string>;

struct RestQueryPage {
    long long total_size = 0;      // rows of the whole result, not of this page; 0 when absent
    bool done = true;              // false while pages remain (a short page is not the end)
    std::string next_records_url;  // absolute path below /services/data/, to GET verbatim; "" when done
    // One entry per record, in answer order; one value per path, in path order. nullopt = SQL NULL.
    std::vector<std::vector<std::optional<std::string>>> rows;
};

// Values, as text for the input function of the mapped column type (type_map.h):
//   JSON null, a missing member, or a null parent anywhere on the path -> nullopt;
//   a string -> itself, escapes decoded to UTF-8 ("\r\n" kept; dates "2024-01-31", datetimes
//     "2017-10-11T13:11:58.000+0000", times "13:30:00.000Z" and multipicklists "a;b" as sent);
//   true/false -> "true"/"false";
//   a number -> the exact text of its JSON token (an integer as its decimal digits);
//   an object or array at the end of a path (address, location, a child subquery's result) -> its compact
//     JSON text for a jsonb column, numbers in it exact too.
// Every path but the last name goes through parent relationships: each such member must be a nested record
// (a JSON object) or null. The "attributes" member and members not selected are skipped, whatever they hold.
//
// Required top-level members: "records" (an array of objects) and "done" (a boolean); "totalSize" (a
// non-negative integer) and "nextRecordsUrl" (a string) are optional, and JSON null counts as absent. done
// false needs a nextRecordsUrl below /services/data/ (no "..", printable ASCII without spaces). Unknown
// members are ignored.
//
// Throws sfb::Error(ExternalService) for a body that is not JSON (truncated, syntax error) or not of this
// shape, naming the member and the record index (records[3].Owner) but never quoting a value; a selected
// member present twice in one object is such an error. Throws sfb::Error(DataException) for a selected value
// holding U+0000, which PostgreSQL cannot store. Throws sfb::Error(InvalidParameter) when `paths` is
// unusable: an empty path or name, or a path that is also a prefix of another ({"Owner"} with {"Owner",
// "Email"}).
RestQueryPage parse_rest_query_page(std::string_view json_body, const std::vector<SoqlPath> &paths);

}  // namespace sfb
