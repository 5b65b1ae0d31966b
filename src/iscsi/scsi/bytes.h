// Big-endian field access for CDBs and parameter data (SCSI fields are big-endian).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace kelpie::scsi {

inline uint64_t GetBe(std::span<const uint8_t> b, size_t off, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v = (v << 8) | b[off + i];
  return v;
}
inline uint16_t GetBe16(std::span<const uint8_t> b, size_t off) {
  return static_cast<uint16_t>(GetBe(b, off, 2));
}
inline uint32_t GetBe32(std::span<const uint8_t> b, size_t off) {
  return static_cast<uint32_t>(GetBe(b, off, 4));
}
inline uint64_t GetBe64(std::span<const uint8_t> b, size_t off) { return GetBe(b, off, 8); }

inline void PutBe(std::span<uint8_t> b, size_t off, size_t width, uint64_t v) {
  for (size_t i = 0; i < width; ++i) b[off + width - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void PutBe16(std::span<uint8_t> b, size_t off, uint64_t v) { PutBe(b, off, 2, v); }
inline void PutBe32(std::span<uint8_t> b, size_t off, uint64_t v) { PutBe(b, off, 4, v); }
inline void PutBe64(std::span<uint8_t> b, size_t off, uint64_t v) { PutBe(b, off, 8, v); }

// Appends a big-endian integer of `width` bytes.
inline void AppendBe(std::vector<uint8_t>& out, size_t width, uint64_t v) {
  out.resize(out.size() + width);
  PutBe(out, out.size() - width, width, v);
}

// Copies `text` into b[off, off+width), padded with spaces; bytes outside 0x20..0x7E become '_'
// (INQUIRY and VPD strings must be printable ASCII).
inline void PutAsciiPadded(std::span<uint8_t> b, size_t off, size_t width, std::string_view text) {
  for (size_t i = 0; i < width; ++i) {
    uint8_t c = i < text.size() ? static_cast<uint8_t>(text[i]) : ' ';
    b[off + i] = (c >= 0x20 && c <= 0x7E) ? c : '_';
  }
}

}  // namespace kelpie::scsi
