// Reading one iSCSI PDU from a byte stream (RFC 7143 §11.2, §13.1): BHS, AHS, header digest,
// data segment with padding, data digest. Every length is checked against the negotiated limit
// before anything is allocated or read. A template over the stream so that the connection (TCP)
// and the fuzz target (an in-process socket pair) run the very same code.
#pragma once
// clang-format off
#include <cstddef>
#include <asio.hpp>
// clang-format on
#include <fmt/format.h>

#include <asio/experimental/as_tuple.hpp>
#include <functional>
#include <string>

#include "iscsi/transport/pdu.h"
#include "iscsi/transport/pdu_frame.h"

namespace kelpie::iscsi {

using PduReadLimits = PduFraming;  // the same negotiated framing as ParsePduFrame

struct PduReadResult {
  bool ok = false;
  bool data_digest_ok = true;
  std::string why;  // when !ok: one line for the log
};

// Reads a 4-byte CRC32C digest; false when the stream ended first.
template <typename Stream>
asio::awaitable<bool> ReadDigest(Stream& stream, std::array<uint8_t, 4>& wire) {
  auto [ec, n] = co_await asio::async_read(stream, asio::buffer(wire),
                                           asio::experimental::as_tuple(asio::use_awaitable));
  co_return !ec;
}

// `begun` is called once the PDU's first byte has arrived (the caller's deadline starts there;
// before it the connection is merely idle).
template <typename Stream>
asio::awaitable<PduReadResult> ReadPduFrom(Stream& stream, Pdu& pdu, PduReadLimits lim,
                                           std::function<void()> begun = {}) {
  constexpr auto tuple = asio::experimental::as_tuple(asio::use_awaitable);
  PduReadResult res;
  auto [fec, first] =
      co_await asio::async_read(stream, asio::buffer(pdu.bhs), asio::transfer_at_least(1), tuple);
  if (fec) {
    res.why = fec == asio::error::eof ? "closed by the initiator" : fec.message();
    co_return res;
  }
  if (begun) begun();
  auto [ec, rest] = co_await asio::async_read(
      stream, asio::buffer(pdu.bhs.data() + first, pdu.bhs.size() - first), tuple);
  const size_t n = first + rest;
  if (ec) {
    res.why = fmt::format("vanished mid-PDU ({} of 48 header bytes)", n);
    co_return res;
  }
  // The AHS is at most 255 × 4 bytes (its length is one byte), the data segment is bounded here.
  const uint32_t dsl = pdu.data_length();
  res.why = PduLengthError(pdu, lim.max_recv_data);
  if (!res.why.empty()) co_return res;
  if (pdu.ahs_length()) {
    pdu.ahs.resize(pdu.ahs_length());
    auto [aec, an] = co_await asio::async_read(stream, asio::buffer(pdu.ahs), tuple);
    if (aec) {
      res.why = "vanished mid-PDU (AHS)";
      co_return res;
    }
  }
  if (lim.header_digest) {
    std::array<uint8_t, 4> wire;
    const bool got = co_await ReadDigest(stream, wire);  // a statement: see sheep/gateway.cc
    if (!got) {
      res.why = "vanished mid-PDU (header digest)";
      co_return res;
    }
    uint32_t crc = Crc32cContinue(0xffffffffu, pdu.bhs);
    crc = Crc32cContinue(crc, pdu.ahs) ^ 0xffffffffu;
    if (crc != DigestFromWire(wire.data())) {
      res.why = fmt::format("header digest error on {}", OpcodeName(pdu.opcode()));
      co_return res;
    }
  }
  if (dsl) {
    pdu.data.resize(PaddedLength(dsl));
    auto [dec, dn] = co_await asio::async_read(stream, asio::buffer(pdu.data), tuple);
    if (dec) {
      res.why = fmt::format("vanished mid-PDU ({} of {} data bytes)", dn, pdu.data.size());
      co_return res;
    }
    if (lim.data_digest) {
      std::array<uint8_t, 4> wire;
      const bool got = co_await ReadDigest(stream, wire);
      if (!got) {
        res.why = "vanished mid-PDU (data digest)";
        co_return res;
      }
      res.data_digest_ok = Crc32c(pdu.data) == DigestFromWire(wire.data());
    }
    pdu.data.resize(dsl);
  }
  res.ok = true;
  co_return res;
}

}  // namespace kelpie::iscsi
