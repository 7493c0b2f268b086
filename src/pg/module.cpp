// Module initialisation: the magic block, settings, and what is known about how we were loaded.
#include "pg_headers.h"

extern "C" {
#include "utils/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

#include "guard.h"
#include "module.h"
#include "settings.h"
#include "shmem.h"
#include "utility_hook.h"
#include "worker.h"

namespace sfb::pg {

bool loaded_via_preload = false;

void require_preloaded(const char *what) {
    if (!loaded_via_preload)
        raise_error(
            ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            std::string(what) + " needs the sf_bulk background worker, which is not running",
            "sf_bulk was loaded into this session only, not at server start.",
            "Add sf_bulk to shared_preload_libraries in postgresql.conf (e.g. shared_preload_libraries "
            "= 'sf_bulk') and restart the server.");
}

namespace {

void init_module(void *) {
    // Reserve the prefix so a typo like `SET sf_bulk.max_paralel_jobs` is an error, not a silent no-op.
    define_settings();
    MarkGUCPrefixReserved("sf_bulk");
    if (IsBinaryUpgrade)
        return;
    // Loaded outside shared_preload_libraries: the extension still installs and its catalogs work;
    // functions that need the worker refuse with a hint (require_preloaded).
    if (!process_shared_preload_libraries_in_progress)
        return;
    loaded_via_preload = true;
    install_shmem_hooks();
    install_utility_hook();
    register_launcher();
}

}  // namespace

}  // namespace sfb::pg

void _PG_init(void) {
    sfb::pg::guarded_void_call(sfb::pg::init_module, nullptr);
}
