// Validator of the `salesforce` foreign data wrapper: runs on CREATE/ALTER of the wrapper, its servers,
// user mappings and foreign tables. The rules live in core (fdw_options); this file only converts.
#include "core/error.h"
#include "core/fdw_options.h"

#include "pg_headers.h"

extern "C" {
#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "nodes/pg_list.h"
}

#include "guard.h"

namespace {

struct RawOptions {
    int count;
    const char **names;
    const char **values;
};

// All PostgreSQL calls that can fail happen here, before any C++ object exists.
RawOptions read_options(Datum options_array) {
    List *options = untransformRelOptions(options_array);
    RawOptions raw;
    raw.count = list_length(options);
    raw.names = static_cast<const char **>(palloc0(sizeof(char *) * (raw.count + 1)));
    raw.values = static_cast<const char **>(palloc0(sizeof(char *) * (raw.count + 1)));
    int i = 0;
    ListCell *cell;
    foreach (cell, options) {
        DefElem *def = lfirst_node(DefElem, cell);
        raw.names[i] = def->defname;
        raw.values[i] = defGetString(def);
        ++i;
    }
    return raw;
}

sfb::OptionOwner owner_for(Oid catalog) {
    switch (catalog) {
        case ForeignDataWrapperRelationId:
            return sfb::OptionOwner::Wrapper;
        case ForeignServerRelationId:
            return sfb::OptionOwner::Server;
        case UserMappingRelationId:
            return sfb::OptionOwner::UserMapping;
        case ForeignTableRelationId:
            return sfb::OptionOwner::ForeignTable;
        case AttributeRelationId:
            return sfb::OptionOwner::ForeignTableColumn;
        default:
            throw sfb::Error(sfb::ErrorKind::Internal, "salesforce options given for an unexpected catalog");
    }
}

}  // namespace

SFB_PG_FUNCTION(sf_bulk_fdw_validator) {
    RawOptions raw = read_options(PG_GETARG_DATUM(0));
    Oid catalog = PG_GETARG_OID(1);

    sfb::OptionList options;
    options.reserve(raw.count);
    for (int i = 0; i < raw.count; ++i)
        options.emplace_back(raw.names[i], raw.values[i]);
    sfb::validate_options(owner_for(catalog), options);
    PG_RETURN_VOID();
}
