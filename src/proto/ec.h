// Erasure coding on the wire and on disk: the copy policy byte, and the store key of a strip.
//
// A VDI created with `-c D:P` (D data strips, P parity strips) has copy_policy = (D/2)<<4 | P and
// nr_copies = D+P (sheepdog's encoding). Each data object of such a VDI is stored as D+P strips,
// strip i on the i-th node of the object's placement. Inode objects stay replicated.
//
// On the peer protocol a strip request carries the object's oid, a non-zero copy_policy (@33) and
// the strip's index (ec_index @34). A sheep stores strip i of data object oid under its own key,
// StripKey(oid, i): the oid with i+1 in bits 24-31 of the data index. Data indexes are below 2^20
// (kMaxDataObjs), so those bits are free and a strip key never collides with an object's oid.
#pragma once
#include <cstdint>

#include "proto/header.h"
#include "proto/oid.h"

namespace kelpie::proto {

inline constexpr int kEcMaxParity = 15;
inline constexpr int kEcMaxStrips = 31;  // 16 data + 15 parity

struct EcPolicy {
  int data = 0;    // D; 0: not erasure coded (replicated)
  int parity = 0;  // P
  int strips() const { return data + parity; }
  bool coded() const { return data != 0; }
};

// True for D in {2,4,8,16} and 1 <= P <= 15.
constexpr bool ValidEc(int d, int p) {
  return (d == 2 || d == 4 || d == 8 || d == 16) && p >= 1 && p <= kEcMaxParity;
}
constexpr uint8_t EcCopyPolicy(int d, int p) { return uint8_t(((d / 2) << 4) | p); }
// The policy a copy_policy byte encodes; {0, 0} for 0 (replication) or an invalid byte.
constexpr EcPolicy EcFromCopyPolicy(uint8_t policy) {
  const int d = (policy >> 4) * 2, p = policy & 0x0f;
  if (!ValidEc(d, p)) return {};
  return {d, p};
}

inline constexpr int kStripShift = 24;
inline constexpr uint64_t kStripMask = 0xffull << kStripShift;

constexpr uint64_t StripKey(uint64_t oid, int strip) {
  return (oid & ~kStripMask) | (uint64_t(strip + 1) << kStripShift);
}
constexpr bool IsStripKey(uint64_t key) { return IsDataOid(key) && (key & kStripMask) != 0; }
constexpr int StripOfKey(uint64_t key) { return int((key & kStripMask) >> kStripShift) - 1; }
// The object a store key belongs to (the key itself unless it is a strip's).
constexpr uint64_t ObjectOfKey(uint64_t key) { return IsStripKey(key) ? key & ~kStripMask : key; }

// Peer requests: address a store key (an object's copy, or one strip of an EC object).
inline void SetStoreKey(Header& h, uint64_t key) {
  h.set_oid(ObjectOfKey(key));
  h.set_obj_copy_policy(IsStripKey(key) ? 1 : 0);
  h.Set<uint8_t>(34, IsStripKey(key) ? uint8_t(StripOfKey(key)) : 0);
}
// The store key a peer request addresses; 0 (no valid key) for a strip index out of range.
inline uint64_t StoreKeyOf(const Header& h) {
  if (h.obj_copy_policy() == 0 || !IsDataOid(h.oid())) return h.oid();
  const uint8_t strip = h.Get<uint8_t>(34);
  return strip < kEcMaxStrips ? StripKey(h.oid(), strip) : 0;
}

}  // namespace kelpie::proto
