#include "org_access.h"

#include "core/error.h"
#include "core/fdw_options.h"

extern "C" {
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "utils/acl.h"
#include "utils/syscache.h"
}

#include "compat.h"
#include "guard.h"

#include <string>

namespace sfb::pg {

ForeignServer *resolve_server(const char *function, const char *server_name) {
    ForeignDataWrapper *wrapper = GetForeignDataWrapperByName("salesforce", false);
    ForeignServer *server = nullptr;
    if (server_name != nullptr) {
        server = GetForeignServerByName(server_name, true);
        if (server == nullptr)
            ereport(ERROR,
                    (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("server \"%s\" does not exist", server_name)));
        if (server->fdwid != wrapper->fdwid)
            ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                            errmsg("server \"%s\" is not a salesforce server", server_name)));
    } else {
        const char *sql =
            "SELECT s.srvname::text FROM pg_catalog.pg_foreign_server s "
            "WHERE s.srvfdw OPERATOR(pg_catalog.=) $1 ORDER BY 1 LIMIT 3";
        Oid types[1] = {OIDOID};
        Datum values[1] = {ObjectIdGetDatum(wrapper->fdwid)};
        if (SPI_execute_with_args(sql, 1, types, values, nullptr, true, 0) != SPI_OK_SELECT)
            elog(ERROR, "could not list salesforce servers");
        if (SPI_processed == 0)
            ereport(ERROR,
                    (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("%s: no salesforce server exists", function),
                     errhint("Create one with CREATE SERVER … FOREIGN DATA WRAPPER salesforce, "
                             "and a user mapping for your role.")));
        if (SPI_processed > 1)
            ereport(ERROR, (errcode(ERRCODE_AMBIGUOUS_PARAMETER),
                            errmsg("%s: more than one salesforce server exists", function),
                            errhint("Say which with server => 'name'.")));
        char *name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        server = GetForeignServerByName(name, false);
    }

    if (sfb_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("permission denied for foreign server %s", server->servername),
                 errhint("A superuser or the server's owner can GRANT USAGE ON FOREIGN SERVER %s TO %s.",
                         server->servername, GetUserNameFromId(GetUserId(), false))));
    bool has_mapping = SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(GetUserId()),
                                             ObjectIdGetDatum(server->serverid)) ||
                       SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
                                             ObjectIdGetDatum(server->serverid));
    if (!has_mapping)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("no user mapping for role %s on server %s",
                               GetUserNameFromId(GetUserId(), false), server->servername),
                        errhint("CREATE USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (auth '…', …) holds "
                                "your Salesforce credentials.",
                                server->servername)));
    return server;
}

void read_options(List *options, OptionList &into) {
    ListCell *cell;
    foreach (cell, options) {
        DefElem *def = lfirst_node(DefElem, cell);
        into.emplace_back(def->defname, defGetString(def));
    }
}

OrgCredentials read_org_credentials(const OrgKey &org) {
    bool server_missing = false;
    OptionList server_options;
    OrgCredentials credentials;
    // PostgreSQL calls only; the strings are built in the caller's containers, which outlive an ERROR.
    pg_call([&] {
        ForeignServer *server = GetForeignServerByName(org.server.c_str(), true);
        if (server == nullptr) {
            server_missing = true;
            return;
        }
        read_options(server->options, server_options);
        // Raises PostgreSQL's own "user mapping not found" error when the mapping is gone.
        UserMapping *mapping = GetUserMapping(org.role, server->serverid);
        ListCell *cell;
        foreach (cell, mapping->options) {
            DefElem *def = lfirst_node(DefElem, cell);
            credentials.mapping_options.emplace(def->defname, defGetString(def));
        }
    });
    if (server_missing)
        throw Error(ErrorKind::InvalidParameter, "server \"" + org.server + "\" no longer exists");
    credentials.server = server_settings(server_options);
    credentials.digest = options_digest(credentials.mapping_options, server_options);
    return credentials;
}

}  // namespace sfb::pg
