// Object ids: bits 0-31 data index, 32-55 vdi id, top bits the object type.
#pragma once
#include <cstdint>

#include "proto/constants.h"

namespace kelpie::proto {

inline constexpr int kVdiSpaceShift = 32;
inline constexpr uint64_t kVdiBit = 1ull << 63;
inline constexpr uint64_t kVmstateBit = 1ull << 62;
inline constexpr uint64_t kVdiAttrBit = 1ull << 61;
inline constexpr uint64_t kVdiBtreeBit = 1ull << 60;
inline constexpr uint64_t kLedgerBit = 1ull << 59;
inline constexpr uint64_t kTypeMask =
    kVdiBit | kVmstateBit | kVdiAttrBit | kVdiBtreeBit | kLedgerBit;

constexpr uint64_t VidToInodeOid(uint32_t vid) {
  return kVdiBit | (uint64_t(vid) << kVdiSpaceShift);
}
constexpr uint64_t VidToDataOid(uint32_t vid, uint32_t idx) {
  return (uint64_t(vid) << kVdiSpaceShift) | idx;
}
constexpr uint32_t OidToVid(uint64_t oid) {
  return uint32_t((oid & ~kTypeMask) >> kVdiSpaceShift) & (kNrVdis - 1);
}
constexpr uint32_t DataOidToIdx(uint64_t oid) { return uint32_t(oid & (kMaxDataObjs - 1)); }
constexpr bool IsInodeOid(uint64_t oid) { return (oid & kVdiBit) != 0; }
constexpr bool IsDataOid(uint64_t oid) { return (oid & kTypeMask) == 0; }

}  // namespace kelpie::proto
