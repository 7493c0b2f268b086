// A narrow switch to the extension's owner for one write to our tables: ordinary roles may read their
// own rows (row-level security) but never write them directly.
#pragma once

#include "pg_headers.h"

namespace sfb::pg {

// The role that owns the sf_bulk extension in this database. Needs an SPI connection.
Oid extension_owner();

// Runs `write` (PostgreSQL calls only, no C++ objects) as the extension owner, in a restricted security
// context so that no user-defined code can run with those rights. If `write` raises an ERROR, the
// transaction's abort restores the user id.
template <typename Fn>
void as_extension_owner(Fn write) {
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(extension_owner(),
                           saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    write();
    SetUserIdAndSecContext(saved_user, saved_context);
}

}  // namespace sfb::pg
