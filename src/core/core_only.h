// Included first by every header in src/core: the core must never see PostgreSQL's headers.
//
// Why: postgres.h pulls in port.h, which redefines snprintf/printf-family names as macros; some C++
// standard headers then undo them again, so behaviour would depend on include order. The core is also
// unit-tested and sanitized on its own, which only works if it has no link-time dependency on the server.
#pragma once

#ifdef POSTGRES_H
#error "src/core headers must not be included after postgres.h; keep core code free of PostgreSQL headers"
#endif

#define SFB_CORE_ONLY 1
