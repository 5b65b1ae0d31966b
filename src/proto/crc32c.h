// CRC32C (Castagnoli), the checksum of iSCSI digests and of Kelpie's stored blocks, computed by
// isa-l (hardware CRC instructions where the CPU has them).
#pragma once
#include <cstdint>
#include <span>

namespace kelpie::proto {

// The finished CRC32C of bytes (initial register all ones, result inverted), as iSCSI defines it.
uint32_t Crc32c(std::span<const uint8_t> bytes);

}  // namespace kelpie::proto
