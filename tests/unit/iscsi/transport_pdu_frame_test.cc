#include <gtest/gtest.h>

#include "iscsi/transport/pdu_frame.h"

namespace kelpie::iscsi {
namespace {

std::vector<uint8_t> TextRequest(const std::string& keys, bool header_digest, bool data_digest) {
  Pdu p = Pdu::Make(op::kTextRequest, flag::kFinal, 7);
  p.set_data(std::vector<uint8_t>(keys.begin(), keys.end()));
  return EncodePdu(p, header_digest, data_digest);
}

TEST(TransportPduFrame, SplitsPdusWithDigestsAndPadding) {
  PduFraming f{.header_digest = true, .data_digest = true, .max_recv_data = 8192};
  std::vector<uint8_t> wire = TextRequest("A=1", true, true);
  const size_t first = wire.size();
  const std::vector<uint8_t> second = TextRequest("SendTargets=All", true, true);
  wire.insert(wire.end(), second.begin(), second.end());
  Pdu pdu;
  PduFrameResult r = ParsePduFrame(wire, f, pdu);
  ASSERT_EQ(r.kind, PduFrameResult::Kind::kPdu);
  EXPECT_EQ(r.consumed, first);
  EXPECT_TRUE(r.data_digest_ok);
  EXPECT_EQ(std::string(pdu.data.begin(), pdu.data.end()), "A=1");
  r = ParsePduFrame(std::span(wire).subspan(first), f, pdu);
  ASSERT_EQ(r.kind, PduFrameResult::Kind::kPdu);
  EXPECT_EQ(std::string(pdu.data.begin(), pdu.data.end()), "SendTargets=All");
}

TEST(TransportPduFrame, WaitsForTheWholePdu) {
  const std::vector<uint8_t> wire = TextRequest("A=1", false, false);
  Pdu pdu;
  for (size_t n = 0; n < wire.size(); ++n)
    EXPECT_EQ(ParsePduFrame(std::span(wire).first(n), PduFraming{}, pdu).kind,
              PduFrameResult::Kind::kNeedMore)
        << n;
}

TEST(TransportPduFrame, RejectsOversizedSegmentAndBadDigests) {
  std::vector<uint8_t> wire = TextRequest(std::string(600, 'x'), true, true);
  Pdu pdu;
  PduFrameResult r =
      ParsePduFrame(wire, {.header_digest = true, .data_digest = true, .max_recv_data = 512}, pdu);
  EXPECT_EQ(r.kind, PduFrameResult::Kind::kError);
  EXPECT_NE(r.why.find("MaxRecvDataSegmentLength 512"), std::string::npos) << r.why;

  PduFraming f{.header_digest = true, .data_digest = true, .max_recv_data = 8192};
  wire.back() ^= 1;  // data digest
  r = ParsePduFrame(wire, f, pdu);
  ASSERT_EQ(r.kind, PduFrameResult::Kind::kPdu);
  EXPECT_FALSE(r.data_digest_ok);
  wire[kBhsLength] ^= 1;  // header digest
  r = ParsePduFrame(wire, f, pdu);
  EXPECT_EQ(r.kind, PduFrameResult::Kind::kError);
  EXPECT_NE(r.why.find("header digest"), std::string::npos) << r.why;
}

}  // namespace
}  // namespace kelpie::iscsi
