#include <gtest/gtest.h>

#include "iscsi/transport/text_keys.h"

namespace kelpie::iscsi {
namespace {

std::vector<uint8_t> Bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

TEST(TransportTextKeys, ParseAndSerialize) {
  const auto kv = ParseTextKeys(Bytes(std::string("A=1\0B=x,y\0C=\0\0\0", 15)));
  ASSERT_TRUE(kv);
  ASSERT_EQ(kv->size(), 3u);
  EXPECT_EQ((*kv)[1], (std::pair<std::string, std::string>{"B", "x,y"}));
  EXPECT_EQ((*kv)[2].second, "");
  EXPECT_EQ(SerializeTextKeys(*kv), Bytes(std::string("A=1\0B=x,y\0C=\0", 13)));
  EXPECT_EQ(FindKey(*kv, "B"), "x,y");
  EXPECT_EQ(FindKey(*kv, "Z"), std::nullopt);
  // A final pair without its NUL is tolerated.
  EXPECT_EQ(ParseTextKeys(Bytes("K=v"))->at(0).second, "v");
}

TEST(TransportTextKeys, ParseRejectsMalformed) {
  EXPECT_FALSE(ParseTextKeys(Bytes(std::string("novalue\0", 8))));
  EXPECT_FALSE(ParseTextKeys(Bytes(std::string("=v\0", 3))));
  EXPECT_FALSE(ParseTextKeys(Bytes(std::string(64, 'k') + "=v")));
  EXPECT_FALSE(ParseTextKeys(Bytes("k=" + std::string(kMaxKeyValueLength + 1, 'v'))));
}

TEST(TransportTextKeys, ParseNumber) {
  EXPECT_EQ(ParseNumber("262144"), 262144u);
  EXPECT_EQ(ParseNumber("0x10"), 16u);
  EXPECT_FALSE(ParseNumber(""));
  EXPECT_FALSE(ParseNumber("12a"));
  EXPECT_FALSE(ParseNumber("-1"));
}

struct Case {
  std::string key, offer, answer;
};

TEST(TransportTextKeys, ResultFunctions) {
  TargetLimits limits;  // MRDSL 262144, MaxBurst 1 MiB, FirstBurst 256 KiB, MaxR2T 16
  Negotiator n(limits);
  const std::vector<Case> cases = {
      {"HeaderDigest", "None,CRC32C", "None"},  // first of the offer we support
      {"DataDigest", "CRC32C,None", "CRC32C"},
      {"MaxConnections", "4", "1"},                // Minimum
      {"InitialR2T", "No", "No"},                  // OR (ours No)
      {"ImmediateData", "Yes", "Yes"},             // AND (ours Yes)
      {"MaxBurstLength", "262144", "262144"},      // Minimum
      {"FirstBurstLength", "16777215", "262144"},  // Minimum
      {"DefaultTime2Wait", "0", "2"},              // Maximum
      {"DefaultTime2Retain", "0", "0"},            // Minimum
      {"MaxOutstandingR2T", "1", "1"},
      {"DataPDUInOrder", "Yes", "Yes"},
      {"DataSequenceInOrder", "No", "No"},  // OR: we accept No
      {"ErrorRecoveryLevel", "2", "0"},
      {"IFMarker", "Yes", "No"},
      {"OFMarkInt", "2048", kIrrelevant},
      {"X-com.example.Vendor", "1", kNotUnderstood},
      {"Bogus", "1", kNotUnderstood},
      {"TargetAlias", "x", kReject},  // targets only
      {"CHAP_A", "5", kIrrelevant},
  };
  for (const Case& c : cases) {
    auto a = n.Offer(c.key, c.offer, NegotiationPhase::kOperational, false);
    EXPECT_FALSE(a.fail) << c.key;
    EXPECT_EQ(a.value, c.answer) << c.key;
  }
  n.Finish();
  const SessionParams& p = n.params();
  EXPECT_FALSE(p.header_digest);
  EXPECT_TRUE(p.data_digest);
  EXPECT_FALSE(p.initial_r2t);
  EXPECT_TRUE(p.immediate_data);
  EXPECT_EQ(p.max_burst_length, 262144u);
  EXPECT_EQ(p.first_burst_length, 262144u);
  EXPECT_EQ(p.max_outstanding_r2t, 1u);
  EXPECT_FALSE(p.data_sequence_in_order);
}

TEST(TransportTextKeys, RejectsOutOfRangeAndGarbage) {
  Negotiator n(TargetLimits{});
  EXPECT_EQ(n.Offer("MaxBurstLength", "100", NegotiationPhase::kOperational, false).value, kReject);
  EXPECT_EQ(n.Offer("MaxConnections", "0", NegotiationPhase::kOperational, false).value, kReject);
  EXPECT_EQ(n.Offer("ImmediateData", "Maybe", NegotiationPhase::kOperational, false).value,
            kReject);
  EXPECT_EQ(n.Offer("HeaderDigest", "MD5", NegotiationPhase::kOperational, false).value, kReject);
  EXPECT_EQ(n.Offer("MaxRecvDataSegmentLength", "100", NegotiationPhase::kOperational, false).value,
            kReject);
}

TEST(TransportTextKeys, CrcDigestsCanBeDisabled) {
  TargetLimits limits;
  limits.crc32c_digests = false;
  Negotiator n(limits);
  EXPECT_EQ(n.Offer("HeaderDigest", "CRC32C", NegotiationPhase::kOperational, false).value,
            kReject);
  EXPECT_EQ(n.Offer("DataDigest", "CRC32C,None", NegotiationPhase::kOperational, false).value,
            "None");
}

TEST(TransportTextKeys, DeclarationsAreNotAnswered) {
  Negotiator n(TargetLimits{});
  auto a = n.Offer("MaxRecvDataSegmentLength", "65536", NegotiationPhase::kOperational, false);
  EXPECT_FALSE(a.value);
  EXPECT_EQ(n.params().initiator_mrdsl, 65536u);
  EXPECT_FALSE(n.Offer("InitiatorAlias", "host1", NegotiationPhase::kOperational, false).value);
  EXPECT_EQ(n.params().initiator_alias, "host1");
  auto decl = n.TakeOwnDeclaration();
  ASSERT_TRUE(decl);
  EXPECT_EQ(decl->first, "MaxRecvDataSegmentLength");
  EXPECT_EQ(decl->second, "262144");
  EXPECT_EQ(n.params().target_mrdsl, 262144u);
  EXPECT_FALSE(n.TakeOwnDeclaration());
}

TEST(TransportTextKeys, IrrelevantInDiscovery) {
  Negotiator n(TargetLimits{});
  for (const char* key :
       {"MaxConnections", "InitialR2T", "ImmediateData", "MaxBurstLength", "FirstBurstLength",
        "MaxOutstandingR2T", "DataPDUInOrder", "DataSequenceInOrder"}) {
    EXPECT_EQ(n.Offer(key, "1", NegotiationPhase::kOperational, true).value, kIrrelevant) << key;
  }
  EXPECT_EQ(n.Offer("HeaderDigest", "None", NegotiationPhase::kOperational, true).value, "None");
}

TEST(TransportTextKeys, ReofferWithDifferentValueFails) {
  Negotiator n(TargetLimits{});
  EXPECT_FALSE(n.Offer("MaxBurstLength", "65536", NegotiationPhase::kOperational, false).fail);
  EXPECT_FALSE(n.Offer("MaxBurstLength", "65536", NegotiationPhase::kOperational, false).fail);
  EXPECT_TRUE(n.Offer("MaxBurstLength", "4096", NegotiationPhase::kOperational, false).fail);
}

TEST(TransportTextKeys, FullFeaturePhase) {
  Negotiator n(TargetLimits{});
  EXPECT_EQ(n.Offer("MaxBurstLength", "65536", NegotiationPhase::kFullFeature, false).value,
            kReject);
  EXPECT_EQ(
      n.Offer("MaxRecvDataSegmentLength", "8192", NegotiationPhase::kFullFeature, false).value,
      "262144");
  EXPECT_EQ(n.params().initiator_mrdsl, 8192u);
}

TEST(TransportTextKeys, FirstBurstNeverExceedsMaxBurst) {
  Negotiator n(TargetLimits{});
  n.Offer("MaxBurstLength", "8192", NegotiationPhase::kOperational, false);
  n.Offer("FirstBurstLength", "65536", NegotiationPhase::kOperational, false);
  n.Finish();
  EXPECT_EQ(n.params().first_burst_length, 8192u);
}

}  // namespace
}  // namespace kelpie::iscsi
