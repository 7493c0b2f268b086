// SQL functions that ask the org something now: sf_bulk.describe_object / describe_global (behind
// sf_bulk_describe and sf_bulk_objects) and sf_bulk.org_limits (behind sf_bulk_limits). Each returns
// Salesforce's JSON; the SQL wrappers in the extension script turn it into rows.
#include "core/bulk_api.h"
#include "core/describe.h"
#include "core/error.h"
#include "core/type_map.h"

#include "pg_headers.h"

extern "C" {
#include "executor/spi.h"
#include "utils/builtins.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/jsonb.h"
}

#include "backend_call.h"
#include "describe_cache.h"
#include "guard.h"

#include <string>
#include <vector>

namespace sfb::pg {

namespace {

const char *optional_name(FunctionCallInfo fcinfo, int n) {
    return PG_ARGISNULL(n) ? nullptr : NameStr(*PG_GETARG_NAME(n));
}

Datum jsonb_from(const std::string &text) {
    return pg_call([&text] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(text.c_str())); });
}

void connect_spi() {
    pg_call([] {
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "SPI_connect failed");
    });
}

void finish_spi() {
    pg_call([] { SPI_finish(); });
}

Datum describe(const char *function, std::string object, const char *server, bool refresh) {
    connect_spi();
    OrgCall org = org_for_call(function, server);
    std::string body = cached_describe(org, object, refresh, function);
    finish_spi();
    return jsonb_from(body);
}

}  // namespace

}  // namespace sfb::pg

// sf_bulk.describe_object(object text, server name, refresh boolean) -> jsonb
SFB_PG_FUNCTION(sf_bulk_describe_object) {
    if (PG_ARGISNULL(0))
        sfb::pg::raise_error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "sf_bulk_describe: object must not be NULL");
    char *object = text_to_cstring(PG_GETARG_TEXT_PP(0));
    bool refresh = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
    return sfb::pg::describe("sf_bulk_describe", object, sfb::pg::optional_name(fcinfo, 1), refresh);
}

// sf_bulk.describe_global(server name, refresh boolean) -> jsonb
SFB_PG_FUNCTION(sf_bulk_describe_global) {
    bool refresh = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
    return sfb::pg::describe("sf_bulk_objects", "", sfb::pg::optional_name(fcinfo, 0), refresh);
}

// sf_bulk.org_limits(server name) -> jsonb: GET /limits, never cached (it is asked for because it changes).
SFB_PG_FUNCTION(sf_bulk_org_limits) {
    using namespace sfb;
    using namespace sfb::pg;
    const char *function = "sf_bulk_limits";
    connect_spi();
    OrgCall org = org_for_call(function, optional_name(fcinfo, 0));
    HttpRequest request;
    request.url = limits_path(org.api_version);
    request.headers.emplace_back("Accept", "application/json");
    HttpResponse response = call_org(org, std::move(request), function);
    finish_spi();
    if (response.status != 200)
        raise_error(ERRCODE_FDW_ERROR, std::string(function) + ": Salesforce refused the limits request: " +
                                           parse_api_error(response.status, response.body).summary());
    return jsonb_from(response.body);
}

// sf_bulk.column_types(describe jsonb) -> text[]: for each field of an sObject describe, in its order, the
// column type sf_bulk_query creates for it (type_map.h), NULL where Bulk API 2.0 query jobs do not return
// the field. sf_bulk_describe shows it as pg_type.
SFB_PG_FUNCTION(sf_bulk_column_types) {
    using namespace sfb;
    using namespace sfb::pg;
    if (PG_ARGISNULL(0))
        PG_RETURN_NULL();
    const char *text =
        pg_call([fcinfo] { return DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(0))); });
    ObjectDescribe object;
    try {
        object = parse_sobject_describe(text);
    } catch (const Error &e) {
        raise_error(ERRCODE_INVALID_PARAMETER_VALUE, std::string("sf_bulk.column_types: ") + e.what());
    }
    std::vector<std::string> types;
    for (const FieldDescribe &f : object.fields) {
        PgColumnType t = pg_type_for(f);
        types.push_back(t.bulk_selectable ? t.ddl() : std::string());
    }
    return pg_call([&types] {
        int count = static_cast<int>(types.size());
        Datum *values = static_cast<Datum *>(palloc(sizeof(Datum) * Max(count, 1)));
        bool *nulls = static_cast<bool *>(palloc(sizeof(bool) * Max(count, 1)));
        for (int i = 0; i < count; ++i) {
            nulls[i] = types[i].empty();
            values[i] = nulls[i] ? (Datum)0 : CStringGetTextDatum(types[i].c_str());
        }
        int dims[1] = {count};
        int lbs[1] = {1};
        return PointerGetDatum(
            construct_md_array(values, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
    });
}
