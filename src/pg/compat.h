// Differences between the PostgreSQL major versions sf_bulk builds against, in one place.
#pragma once

#include "pg_headers.h"

extern "C" {
#include "storage/latch.h"
}

// PostgreSQL 17 ties a WaitEventSet to a resource owner (none: freed by us); 15 and 16 to a memory context.
#if PG_VERSION_NUM >= 170000
#define sfb_create_wait_event_set(nevents) CreateWaitEventSet(nullptr, (nevents))
#else
#define sfb_create_wait_event_set(nevents) CreateWaitEventSet(CurrentMemoryContext, (nevents))
#endif
