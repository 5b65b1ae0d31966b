// Fuzz target: the byte stream a client or another sheep sends to a sheep, through the parts of
// the server that need no networking (clang 14 cannot compile the sheep's coroutines under these
// sanitizers): the 48-byte header decode, the checks the server makes before dispatch
// (data_length bound, protocol version), then the payload decoders — the VDI name/tag payload and
// the JSON bodies of admin and LU-state ops — and the header views the peer ops read.
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <span>

#include "proto/header.h"
#include "proto/oid.h"
#include "proto/request_check.h"
#include "proto/vdi_name.h"

using namespace kelpie::proto;

namespace {

void DecodeBody(const Header& h, std::span<const uint8_t> body) {
  VdiNamePayload vdi;
  if (ParseVdiNamePayload(h, body, vdi)) {
    if (vdi.name.empty() || vdi.name.size() > kMaxVdiLen || vdi.tag.size() > kMaxVdiTagLen)
      std::abort();
    (void)VdiNameHash(vdi.name);
  }
  // Admin and LU-state bodies: JSON, read the way their handlers read them.
  const nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return;
  try {
    (void)j.value("copies", 0);
    (void)j.value("block_size_shift", 0);
    (void)j.value("lock", false);
    if (j.contains("name") && j.at("name").is_string()) (void)j.at("name").get<std::string>();
  } catch (const nlohmann::json::exception&) {
    // A wrongly typed field: the handler answers INVALID_PARMS.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  while (in.size() >= kHeaderSize) {
    const auto raw = in.first<kHeaderSize>();
    const Header h = DecodeHeader(raw);
    const HeaderBytes again = EncodeHeader(h);
    if (!std::equal(again.begin(), again.end(), raw.begin())) std::abort();
    in = in.subspan(kHeaderSize);
    if (!DataLengthAllowed(h)) return 0;  // the server replies INVALID_PARMS and drops it
    std::span<const uint8_t> body;
    if (h.is_write()) {
      if (in.size() < h.data_length) return 0;  // truncated request: connection dropped
      body = in.first(h.data_length);
      in = in.subspan(h.data_length);
    }
    if (!VersionSupported(h)) continue;  // VER_MISMATCH, the connection goes on
    // Peer and object ops read these views of the header.
    (void)OidToVid(h.oid());
    (void)h.offset();
    (void)h.tgt_epoch();
    const Header rsp = MakeResponse(h, 0);
    if (rsp.id != h.id || rsp.opcode != h.opcode) std::abort();
    DecodeBody(h, body);
  }
  return 0;
}
