#include "iscsi/transport/pdu.h"

#include <fmt/format.h>
#include <isa-l/crc.h>

namespace kelpie::iscsi {

Pdu Pdu::Make(uint8_t opcode, uint8_t flags, uint32_t itt) {
  Pdu p;
  p.bhs[0] = opcode;
  p.bhs[1] = flags;
  PutBe32(&p.bhs[16], itt);
  return p;
}

void Pdu::set_data(std::vector<uint8_t> d) {
  data = std::move(d);
  PutBe24(&bhs[5], uint32_t(data.size()));
}

uint32_t Crc32cContinue(uint32_t crc_state, std::span<const uint8_t> bytes) {
  // isa-l's crc32_iscsi takes and returns the raw (non-inverted) register.
  return crc32_iscsi(const_cast<uint8_t*>(bytes.data()), int(bytes.size()), crc_state);
}

uint32_t Crc32c(std::span<const uint8_t> bytes) {
  return Crc32cContinue(0xffffffffu, bytes) ^ 0xffffffffu;
}

void AppendDigest(std::vector<uint8_t>& out, uint32_t crc) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(crc >> (8 * i)));
}

uint32_t DigestFromWire(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

uint32_t DataDigest(std::span<const uint8_t> data) {
  static constexpr uint8_t kZeros[4] = {};
  uint32_t crc = Crc32cContinue(0xffffffffu, data);
  const size_t pad = PaddedLength(uint32_t(data.size())) - data.size();
  if (pad) crc = Crc32cContinue(crc, std::span<const uint8_t>(kZeros, pad));
  return crc ^ 0xffffffffu;
}

std::vector<uint8_t> EncodePdu(const Pdu& pdu, bool header_digest, bool data_digest) {
  const uint32_t dsl = uint32_t(pdu.data.size());
  std::vector<uint8_t> out;
  out.reserve(kBhsLength + 8 + PaddedLength(dsl));
  out.insert(out.end(), pdu.bhs.begin(), pdu.bhs.end());
  out[4] = 0;  // never send AHS
  PutBe24(&out[5], dsl);
  if (header_digest) AppendDigest(out, Crc32c(std::span<const uint8_t>(out.data(), kBhsLength)));
  if (dsl) {
    out.insert(out.end(), pdu.data.begin(), pdu.data.end());
    out.resize(out.size() + (PaddedLength(dsl) - dsl), 0);
    if (data_digest) AppendDigest(out, DataDigest(pdu.data));
  }
  return out;
}

std::string OpcodeName(uint8_t opcode) {
  switch (opcode) {
    case op::kNopOut:
      return "NOP-Out";
    case op::kScsiCommand:
      return "SCSI Command";
    case op::kTaskMgmtRequest:
      return "Task Management Request";
    case op::kLoginRequest:
      return "Login Request";
    case op::kTextRequest:
      return "Text Request";
    case op::kDataOut:
      return "SCSI Data-Out";
    case op::kLogoutRequest:
      return "Logout Request";
    case op::kSnack:
      return "SNACK";
    case op::kNopIn:
      return "NOP-In";
    case op::kScsiResponse:
      return "SCSI Response";
    case op::kTaskMgmtResponse:
      return "Task Management Response";
    case op::kLoginResponse:
      return "Login Response";
    case op::kTextResponse:
      return "Text Response";
    case op::kDataIn:
      return "SCSI Data-In";
    case op::kLogoutResponse:
      return "Logout Response";
    case op::kR2T:
      return "R2T";
    case op::kAsyncMessage:
      return "Async Message";
    case op::kReject:
      return "Reject";
    default:
      return fmt::format("opcode {:#04x}", opcode);
  }
}

}  // namespace kelpie::iscsi
