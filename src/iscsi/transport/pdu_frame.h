// Splitting one iSCSI PDU off the front of a byte buffer (RFC 7143 §11.2, §13.1): BHS, AHS,
// header digest, data segment with padding, data digest. No I/O and no coroutines, so the
// iscsi_pdu fuzz target exercises the framing rules without a socket; every length is checked
// against the negotiated limit before anything is allocated.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "iscsi/transport/pdu.h"

namespace kelpie::iscsi {

struct PduFraming {
  bool header_digest = false;
  bool data_digest = false;
  uint32_t max_recv_data = 8192;  // our MaxRecvDataSegmentLength
};

// Why a received BHS cannot be accepted (empty when it can): its DataSegmentLength over our
// MaxRecvDataSegmentLength. The AHS needs no check: its length is one byte (at most 1020 bytes).
std::string PduLengthError(const Pdu& pdu, uint32_t max_recv_data);

struct PduFrameResult {
  enum class Kind { kPdu, kNeedMore, kError } kind = Kind::kNeedMore;
  size_t consumed = 0;         // kPdu: bytes of `in` the PDU took (digests and padding included)
  bool data_digest_ok = true;  // kPdu: false means the caller rejects it (SNACK/Reject)
  std::string why;             // kError: one line for the log
};

// Parses the PDU at the front of `in` into `pdu` (its data without padding).
PduFrameResult ParsePduFrame(std::span<const uint8_t> in, const PduFraming& framing, Pdu& pdu);

}  // namespace kelpie::iscsi
