// The one place glue files get PostgreSQL's headers from: inside extern "C", postgres.h first.
// Glue files include their src/core headers first and this after them: core headers refuse to follow
// postgres.h (see core/core_only.h). Heavy libraries stay in core.
#pragma once

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}
