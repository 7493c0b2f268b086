// A 64-bit fingerprint of a row's field values. Salesforce echoes the values it was sent in its result
// files, in no particular order; sf_bulk fingerprints each row as it spools it and each result row as it
// stores it, and pairs them up (identical rows one to one) to give every result its source key.
#pragma once
#include "core/core_only.h"

#include <cstdint>
#include <string_view>

namespace sfb {

class RowFingerprint {
  public:
    // Fields are length-prefixed, so ("ab","c") and ("a","bc") differ.
    void add(std::string_view field) noexcept {
        std::uint64_t length = field.size();
        for (int i = 0; i < 8; ++i)
            mix(static_cast<unsigned char>(length >> (8 * i)));
        for (char c : field)
            mix(static_cast<unsigned char>(c));
    }
    // As stored in a PostgreSQL bigint.
    std::int64_t value() const noexcept { return static_cast<std::int64_t>(state_); }
    void reset() noexcept { state_ = kOffset; }

  private:
    // FNV-1a: simple, fast enough next to CSV encoding, and collisions among a job's rows are harmless but
    // for swapping the keys of two rows whose 64-bit fingerprints collide (odds ~ n²/2⁶⁵).
    static constexpr std::uint64_t kOffset = 14695981039346656037ull;
    static constexpr std::uint64_t kPrime = 1099511628211ull;
    void mix(unsigned char byte) noexcept { state_ = (state_ ^ byte) * kPrime; }
    std::uint64_t state_ = kOffset;
};

}  // namespace sfb
