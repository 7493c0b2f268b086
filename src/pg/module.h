// Facts about this process's copy of the module, set in _PG_init.
#pragma once

namespace sfb::pg {

// True when the library was loaded through shared_preload_libraries (so the worker can exist).
extern bool loaded_via_preload;

// Raises an ERROR with a hint naming shared_preload_libraries unless the module was preloaded.
// `what` names the function the user called.
void require_preloaded(const char *what);

}  // namespace sfb::pg
