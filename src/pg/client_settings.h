// What sf_bulk's settings say for the HTTP client and the token broker, as the worker and the backends'
// own calls build them (settings.cpp). Include it before any PostgreSQL header (it brings core headers).
#pragma once

#include "core/http.h"
#include "core/token_broker.h"

namespace sfb::pg {

HttpClientOptions http_client_options(ShouldStopFn should_stop);
TokenBrokerConfig token_broker_config();

}  // namespace sfb::pg
