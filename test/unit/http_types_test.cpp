// The shared HTTP vocabulary: every transport error has its own user-facing name.
#include "core/http_types.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sfb {
namespace {

TEST(HttpTypes, EveryTransportErrorHasADistinctName) {
    std::set<std::string> names;
    for (TransportError e :
         {TransportError::None, TransportError::ResolveFailed, TransportError::ConnectFailed,
          TransportError::Timeout, TransportError::ConnectionDropped, TransportError::TlsError,
          TransportError::Cancelled, TransportError::Other}) {
        names.insert(std::string(to_string(e)));
    }
    EXPECT_EQ(names.size(), 8u);
    EXPECT_EQ(names.count("unknown"), 0u);
    EXPECT_EQ(to_string(TransportError::ConnectFailed), "could not connect");
}

}  // namespace
}  // namespace sfb
