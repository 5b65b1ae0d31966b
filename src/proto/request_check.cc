#include "proto/request_check.h"

namespace kelpie::proto {

namespace {

std::string CString(std::span<const uint8_t> data, size_t off, size_t cap) {
  std::string s;
  for (size_t i = off; i < data.size() && i < off + cap && data[i] != 0; ++i)
    s.push_back(char(data[i]));
  return s;
}

}  // namespace

bool VersionSupported(const Header& h) {
  return h.proto_ver <= (h.opcode < 0x80 ? kProtoVer : kPeerProtoVer);
}

bool ParseVdiNamePayload(const Header& h, std::span<const uint8_t> data, VdiNamePayload& out) {
  if (!h.is_write() || data.empty() || data.size() > kMaxVdiLen + kMaxVdiTagLen) return false;
  out.name = CString(data, 0, kMaxVdiLen);
  out.tag = CString(data, kMaxVdiLen, kMaxVdiTagLen);
  return !out.name.empty();
}

}  // namespace kelpie::proto
