// VDI ids from names: 64-bit FNV-1a of the name bytes, masked to 24 bits, 0 mapped to 1.
#pragma once
#include <cstdint>
#include <string_view>

#include "proto/constants.h"

namespace kelpie::proto {

inline constexpr uint64_t kFnv1aBasis = 0xcbf29ce484222325ull;
inline constexpr uint64_t kFnv1aPrime = 0x100000001b3ull;

constexpr uint64_t Fnv1a64(std::string_view bytes, uint64_t hval = kFnv1aBasis) {
  for (unsigned char c : bytes) {
    hval ^= c;
    hval *= kFnv1aPrime;
  }
  return hval;
}

constexpr uint32_t VdiNameHash(std::string_view name) {
  uint32_t vid = uint32_t(Fnv1a64(name) & (kNrVdis - 1));
  return vid == 0 ? 1 : vid;
}

static_assert(VdiNameHash("test") == 0x7c2b25);

}  // namespace kelpie::proto
