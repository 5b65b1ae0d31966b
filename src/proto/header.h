// The 48-byte sheepdog request/response header, little-endian and packed on the wire.
// The first 16 bytes are common; the last 32 are a union whose meaning depends on the opcode
// (object, vdi, response views). Header keeps those 32 bytes raw and exposes each view's fields
// as accessors at their exact byte offsets, so encoding is a copy and nothing is reinterpreted.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <span>

#include "proto/constants.h"

namespace kelpie::proto {

// Little-endian loads and stores at arbitrary (unaligned) positions.
template <typename T>
inline T LoadLE(const uint8_t* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(p[i]) << (8 * i);
  return v;
}
template <typename T>
inline void StoreLE(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

struct Header {
  uint8_t proto_ver = kProtoVer;
  uint8_t opcode = 0;
  uint16_t flags = 0;
  uint32_t epoch = 0;
  uint32_t id = 0;
  uint32_t data_length = 0;
  std::array<uint8_t, 32> u{};  // bytes 16..47

  // Raw access to the union by absolute header offset (16..47).
  template <typename T>
  T Get(size_t off) const {
    return LoadLE<T>(u.data() + off - 16);
  }
  template <typename T>
  void Set(size_t off, T v) {
    StoreLE<T>(u.data() + off - 16, v);
  }

  // Object request view.
  uint64_t oid() const { return Get<uint64_t>(16); }
  void set_oid(uint64_t v) { Set<uint64_t>(16, v); }
  uint64_t cow_oid() const { return Get<uint64_t>(24); }
  void set_cow_oid(uint64_t v) { Set<uint64_t>(24, v); }
  uint8_t obj_copies() const { return Get<uint8_t>(32); }
  void set_obj_copies(uint8_t v) { Set<uint8_t>(32, v); }
  uint8_t obj_copy_policy() const { return Get<uint8_t>(33); }
  void set_obj_copy_policy(uint8_t v) { Set<uint8_t>(33, v); }
  uint8_t ec_index() const { return Get<uint8_t>(34); }
  void set_ec_index(uint8_t v) { Set<uint8_t>(34, v); }
  uint32_t tgt_epoch() const { return Get<uint32_t>(36); }
  void set_tgt_epoch(uint32_t v) { Set<uint32_t>(36, v); }
  uint32_t offset() const { return Get<uint32_t>(40); }
  void set_offset(uint32_t v) { Set<uint32_t>(40, v); }
  // Kelpie, with flag::kLuFence: the LU-state generation (low 32 bits) the client acted on.
  uint32_t lu_fence() const { return Get<uint32_t>(44); }
  void set_lu_fence(uint32_t v) { Set<uint32_t>(44, v); }

  // VDI request view.
  uint64_t vdi_size() const { return Get<uint64_t>(16); }
  void set_vdi_size(uint64_t v) { Set<uint64_t>(16, v); }
  uint32_t base_vdi_id() const { return Get<uint32_t>(24); }
  void set_base_vdi_id(uint32_t v) { Set<uint32_t>(24, v); }
  uint8_t vdi_copies() const { return Get<uint8_t>(28); }
  void set_vdi_copies(uint8_t v) { Set<uint8_t>(28, v); }
  uint8_t vdi_copy_policy() const { return Get<uint8_t>(29); }
  void set_vdi_copy_policy(uint8_t v) { Set<uint8_t>(29, v); }
  uint8_t store_policy() const { return Get<uint8_t>(30); }
  void set_store_policy(uint8_t v) { Set<uint8_t>(30, v); }
  uint8_t block_size_shift() const { return Get<uint8_t>(31); }
  void set_block_size_shift(uint8_t v) { Set<uint8_t>(31, v); }
  uint32_t snapid() const { return Get<uint32_t>(32); }
  void set_snapid(uint32_t v) { Set<uint32_t>(32, v); }
  uint32_t lock_type() const { return Get<uint32_t>(36); }
  void set_lock_type(uint32_t v) { Set<uint32_t>(36, v); }

  // Response view.
  uint32_t result() const { return Get<uint32_t>(16); }
  void set_result(uint32_t v) { Set<uint32_t>(16, v); }
  uint8_t rsp_copies() const { return Get<uint8_t>(20); }
  void set_rsp_copies(uint8_t v) { Set<uint8_t>(20, v); }
  uint64_t rsp_offset() const { return Get<uint64_t>(24); }
  void set_rsp_offset(uint64_t v) { Set<uint64_t>(24, v); }
  uint32_t rsp_vdi_id() const { return Get<uint32_t>(24); }
  void set_rsp_vdi_id(uint32_t v) { Set<uint32_t>(24, v); }
  uint32_t rsp_attr_id() const { return Get<uint32_t>(28); }
  void set_rsp_attr_id(uint32_t v) { Set<uint32_t>(28, v); }
  uint8_t rsp_vdi_copies() const { return Get<uint8_t>(32); }
  void set_rsp_vdi_copies(uint8_t v) { Set<uint8_t>(32, v); }
  uint8_t rsp_block_size_shift() const { return Get<uint8_t>(33); }
  void set_rsp_block_size_shift(uint8_t v) { Set<uint8_t>(33, v); }

  bool is_write() const { return (flags & flag::kCmdWrite) != 0; }
};

using HeaderBytes = std::array<uint8_t, kHeaderSize>;

HeaderBytes EncodeHeader(const Header& h);
Header DecodeHeader(std::span<const uint8_t, kHeaderSize> b);

// A response header answering `req`: same opcode, id and epoch, the given result, no data.
Header MakeResponse(const Header& req, uint32_t result);

}  // namespace kelpie::proto
