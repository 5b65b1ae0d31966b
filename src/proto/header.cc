#include "proto/header.h"

namespace kelpie::proto {

HeaderBytes EncodeHeader(const Header& h) {
  HeaderBytes b{};
  b[0] = h.proto_ver;
  b[1] = h.opcode;
  StoreLE<uint16_t>(&b[2], h.flags);
  StoreLE<uint32_t>(&b[4], h.epoch);
  StoreLE<uint32_t>(&b[8], h.id);
  StoreLE<uint32_t>(&b[12], h.data_length);
  std::memcpy(&b[16], h.u.data(), h.u.size());
  return b;
}

Header DecodeHeader(std::span<const uint8_t, kHeaderSize> b) {
  Header h;
  h.proto_ver = b[0];
  h.opcode = b[1];
  h.flags = LoadLE<uint16_t>(&b[2]);
  h.epoch = LoadLE<uint32_t>(&b[4]);
  h.id = LoadLE<uint32_t>(&b[8]);
  h.data_length = LoadLE<uint32_t>(&b[12]);
  std::memcpy(h.u.data(), &b[16], h.u.size());
  return h;
}

Header MakeResponse(const Header& req, uint32_t result) {
  Header r;
  r.proto_ver = req.proto_ver;
  r.opcode = req.opcode;
  r.epoch = req.epoch;
  r.id = req.id;
  r.data_length = 0;
  r.set_result(result);
  return r;
}

}  // namespace kelpie::proto
