// What sf_bulk's settings say for the HTTP client, the token broker and the org allowance, as the worker and
// the backends' own calls build them (settings.cpp). Include it before any PostgreSQL header (it brings core
// headers).
#pragma once

#include "core/http.h"
#include "core/org_allowance.h"
#include "core/token_broker.h"

namespace sfb::pg {

HttpClientOptions http_client_options(ShouldStopFn should_stop);
TokenBrokerConfig token_broker_config();
AllowancePolicy allowance_policy();  // sf_bulk.api_reserve, sf_bulk.limits_refresh

}  // namespace sfb::pg
