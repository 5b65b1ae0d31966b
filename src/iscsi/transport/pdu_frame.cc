#include "iscsi/transport/pdu_frame.h"

#include <fmt/format.h>

#include <algorithm>

namespace kelpie::iscsi {

std::string PduLengthError(const Pdu& pdu, uint32_t max_recv_data) {
  const uint32_t dsl = pdu.data_length();
  if (dsl <= max_recv_data) return {};
  return fmt::format("{} with DataSegmentLength {} over our MaxRecvDataSegmentLength {}",
                     OpcodeName(pdu.opcode()), dsl, max_recv_data);
}

PduFrameResult ParsePduFrame(std::span<const uint8_t> in, const PduFraming& framing, Pdu& pdu) {
  PduFrameResult res;
  if (in.size() < pdu.bhs.size()) return res;
  std::copy_n(in.begin(), pdu.bhs.size(), pdu.bhs.begin());
  res.why = PduLengthError(pdu, framing.max_recv_data);
  if (!res.why.empty()) {
    res.kind = PduFrameResult::Kind::kError;
    return res;
  }
  const size_t ahs_len = pdu.ahs_length();
  const size_t dsl = pdu.data_length();
  const size_t padded = PaddedLength(uint32_t(dsl));
  const size_t header_end = pdu.bhs.size() + ahs_len + (framing.header_digest ? 4 : 0);
  const size_t total = header_end + padded + (dsl && framing.data_digest ? 4 : 0);
  if (in.size() < total) return res;
  pdu.ahs.assign(in.begin() + pdu.bhs.size(), in.begin() + pdu.bhs.size() + ahs_len);
  if (framing.header_digest) {
    uint32_t crc = Crc32cContinue(0xffffffffu, pdu.bhs);
    crc = Crc32cContinue(crc, pdu.ahs) ^ 0xffffffffu;
    if (crc != DigestFromWire(in.data() + header_end - 4)) {
      res.kind = PduFrameResult::Kind::kError;
      res.why = fmt::format("header digest error on {}", OpcodeName(pdu.opcode()));
      return res;
    }
  }
  const auto data = in.subspan(header_end, padded);
  if (dsl && framing.data_digest)
    res.data_digest_ok = Crc32c(data) == DigestFromWire(in.data() + header_end + padded);
  pdu.data.assign(data.begin(), data.begin() + dsl);
  res.kind = PduFrameResult::Kind::kPdu;
  res.consumed = total;
  return res;
}

}  // namespace kelpie::iscsi
