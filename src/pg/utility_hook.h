#pragma once

namespace sfb::pg {

// From _PG_init (preloaded only): chains our ProcessUtility hook (see utility_hook.cpp).
void install_utility_hook();

}  // namespace sfb::pg
