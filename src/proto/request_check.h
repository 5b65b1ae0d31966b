// Checks the sheep applies to a request before dispatching it, kept free of networking so that the
// server and the sheep_request fuzz target run the very same code.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "proto/header.h"

namespace kelpie::proto {

// Public opcodes accept every version up to kProtoVer (tgtd sends 0 and 1), internal ones (0x80
// and up) every version up to kPeerProtoVer.
bool VersionSupported(const Header& h);

// data_length bounded before anything is allocated for the request's data.
inline bool DataLengthAllowed(const Header& h) { return h.data_length <= kMaxDataLength; }

// name[kMaxVdiLen] (+ tag[kMaxVdiTagLen]) of a VDI request, each up to its first NUL. False when
// the request carries no data, more than both fields, or an empty name.
struct VdiNamePayload {
  std::string name, tag;
};
bool ParseVdiNamePayload(const Header& h, std::span<const uint8_t> data, VdiNamePayload& out);

}  // namespace kelpie::proto
