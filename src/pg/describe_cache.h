// The one describe cache, sf_bulk.describe: what Salesforce said an org's objects look like, per user
// mapping (field-level security makes describes differ between Salesforce users), object and API version.
// A row younger than sf_bulk.describe_ttl is used as it is; an older one is revalidated with
// If-Modified-Since (304: still right), and replaced when Salesforce answers with a new describe. The SQL
// functions sf_bulk_describe and sf_bulk_objects read it; the ingest pre-flight, the query loader, foreign
// tables and sync are to read it through cached_describe too, never with their own copy.
#pragma once

#include "backend_call.h"

#include "core/describe.h"

#include <map>
#include <string>

namespace sfb::pg {

// The describe of `object` (the empty string: describeGlobal, the list of objects) as JSON text, from the
// cache or from Salesforce. `refresh` asks Salesforce even within the TTL. Inside a transaction with an SPI
// connection; throws PgError (an unknown object, Salesforce unreachable: the message names `function`).
std::string cached_describe(const OrgCall &org, const std::string &object, bool refresh,
                            const char *function);

// The parsed describes one call needs (its object and the objects its relationship paths reach), each read
// once through cached_describe. When Salesforce cannot be asked and nothing is cached, the error names
// `validate => false`, which skips the describe.
class CallDescribes {
  public:
    CallDescribes(OrgCall org, const char *function) : org_(std::move(org)), function_(function) {}

    // Throws PgError (an unknown object: Salesforce's answer; unreachable: with the hint above).
    const ObjectDescribe &get(const std::string &object);
    // The describes read so far, by the name asked for.
    DescribeLookup known() const;
    // Fetches on demand; the pseudo-object of polymorphic paths (which Salesforce does not describe) is
    // never asked for.
    DescribeLookup fetching();

  private:
    OrgCall org_;
    const char *function_;
    std::map<std::string, ObjectDescribe> describes_;
};

}  // namespace sfb::pg
