#include "proto/crc32c.h"

#include <isa-l/crc.h>

namespace kelpie::proto {

uint32_t Crc32c(std::span<const uint8_t> bytes) {
  // isa-l's crc32_iscsi takes and returns the raw (non-inverted) register.
  return crc32_iscsi(const_cast<uint8_t*>(bytes.data()), int(bytes.size()), 0xffffffffu) ^
         0xffffffffu;
}

}  // namespace kelpie::proto
