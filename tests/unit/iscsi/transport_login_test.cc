#include <gtest/gtest.h>

#include "iscsi/transport/login.h"

namespace kelpie::iscsi {
namespace {

constexpr uint8_t kT = 0x80, kC = 0x40;
constexpr uint8_t kSecurity = 0, kOperational = 1, kFull = 3;

Pdu LoginRequest(uint8_t flags, const KeyValues& keys, uint16_t tsih = 0) {
  Pdu p = Pdu::Make(0x40 | op::kLoginRequest, flags, 0x1000);
  const uint8_t isid[6] = {0x80, 1, 2, 3, 0, 0};
  std::copy(isid, isid + 6, p.bhs.begin() + 8);
  p.set_u16(14, tsih);
  p.set_u16(20, 1);  // CID
  p.set_u32(off::kCmdSn, 100);
  p.set_u32(off::kExpStatSn, 50);
  p.set_data(SerializeTextKeys(keys));
  return p;
}
uint8_t Flags(bool t, uint8_t csg, uint8_t nsg) {
  return uint8_t((t ? kT : 0) | csg << 2 | (t ? nsg : 0));
}
uint16_t Status(const Pdu& r) { return uint16_t(r.bhs[36] << 8 | r.bhs[37]); }
KeyValues Keys(const Pdu& r) { return *ParseTextKeys(r.data); }

const KeyValues kNames = {{"InitiatorName", "iqn.2026-11.test:init"},
                          {"TargetName", "iqn.2026-11.io.kelpie:disk"},
                          {"SessionType", "Normal"}};

class TransportLoginTest : public ::testing::Test {
 protected:
  TransportLoginTest() {
    config.target_exists = [](const std::string& n) { return n == "iqn.2026-11.io.kelpie:disk"; };
  }
  LoginConfig config;
};

TEST_F(TransportLoginTest, SinglePduWithoutSecurity) {
  Login login(config);
  KeyValues keys = kNames;
  keys.insert(keys.end(), {{"HeaderDigest", "None,CRC32C"},
                           {"DataDigest", "None"},
                           {"InitialR2T", "No"},
                           {"ImmediateData", "Yes"},
                           {"MaxBurstLength", "262144"},
                           {"FirstBurstLength", "262144"},
                           {"MaxRecvDataSegmentLength", "262144"},
                           {"ErrorRecoveryLevel", "0"}});
  auto step = login.Process(LoginRequest(Flags(true, kOperational, kFull), keys));
  ASSERT_EQ(step.kind, Login::Step::Kind::kComplete);
  EXPECT_EQ(login.initiator_name(), "iqn.2026-11.test:init");
  EXPECT_EQ(login.target_name(), "iqn.2026-11.io.kelpie:disk");
  EXPECT_FALSE(login.discovery());
  EXPECT_EQ(login.isid_hex(), "800102030000");
  EXPECT_EQ(login.exp_cmdsn(), 100u);
  Pdu r = login.FinalResponse(42);
  EXPECT_EQ(r.opcode(), op::kLoginResponse);
  EXPECT_EQ(r.flags(), kT | kOperational << 2 | kFull);
  EXPECT_EQ(r.u16(14), 42);  // TSIH only in the final response
  EXPECT_EQ(r.itt(), 0x1000u);
  EXPECT_EQ(r.u32(off::kStatSn), 50u);
  EXPECT_EQ(r.u32(off::kExpCmdSn), 100u);
  EXPECT_EQ(r.u32(off::kMaxCmdSn), 100u + 127);
  EXPECT_EQ(Status(r), 0);
  EXPECT_EQ(r.bhs[2], 0);  // Version-max
  EXPECT_EQ(r.bhs[3], 0);  // Version-active
  const KeyValues answer = Keys(r);
  EXPECT_EQ(FindKey(answer, "TargetPortalGroupTag"), "1");
  EXPECT_EQ(FindKey(answer, "HeaderDigest"), "None");
  EXPECT_EQ(FindKey(answer, "InitialR2T"), "No");
  EXPECT_EQ(FindKey(answer, "FirstBurstLength"), "262144");
  EXPECT_EQ(FindKey(answer, "MaxRecvDataSegmentLength"), "262144");
  EXPECT_EQ(login.next_statsn(), 51u);
  EXPECT_EQ(login.params().initiator_mrdsl, 262144u);
}

TEST_F(TransportLoginTest, TwoStagesWithoutSecurity) {
  Login login(config);
  KeyValues first = kNames;
  first.emplace_back("AuthMethod", "None");
  auto s1 = login.Process(LoginRequest(Flags(true, kSecurity, kOperational), first));
  ASSERT_EQ(s1.kind, Login::Step::Kind::kReply);
  EXPECT_EQ(s1.response.flags(), kT | kSecurity << 2 | kOperational);
  EXPECT_EQ(FindKey(Keys(s1.response), "AuthMethod"), "None");
  EXPECT_EQ(s1.response.u16(14), 0);
  auto s2 =
      login.Process(LoginRequest(Flags(true, kOperational, kFull), {{"MaxBurstLength", "65536"}}));
  ASSERT_EQ(s2.kind, Login::Step::Kind::kComplete);
  EXPECT_EQ(login.FinalResponse(3).u32(off::kStatSn), 51u);
}

TEST_F(TransportLoginTest, NotReadyToTransitWithoutT) {
  Login login(config);
  auto s = login.Process(LoginRequest(Flags(false, kOperational, 0), kNames));
  ASSERT_EQ(s.kind, Login::Step::Kind::kReply);
  EXPECT_EQ(s.response.flags() & kT, 0);
}

TEST_F(TransportLoginTest, StatusClasses) {
  struct Case {
    KeyValues keys;
    uint16_t status;
  };
  const std::vector<Case> cases = {
      {{{"TargetName", "iqn.2026-11.io.kelpie:disk"}}, login_status::kMissingParameter},
      {{{"InitiatorName", "iqn.x"}}, login_status::kMissingParameter},
      {{{"InitiatorName", "iqn.x"}, {"TargetName", "iqn.nope"}}, login_status::kTargetNotFound},
      {{{"InitiatorName", "iqn.x"}, {"SessionType", "Other"}},
       login_status::kSessionTypeNotSupported},
  };
  for (const Case& c : cases) {
    Login login(config);
    auto s = login.Process(LoginRequest(Flags(true, kOperational, kFull), c.keys));
    ASSERT_EQ(s.kind, Login::Step::Kind::kFail);
    EXPECT_EQ(Status(s.response), c.status);
    EXPECT_FALSE(s.why.empty());
  }
}

TEST_F(TransportLoginTest, ProtocolErrors) {
  {
    Login login(config);
    Pdu p = LoginRequest(kT | kC | kOperational << 2 | kFull, kNames);
    EXPECT_EQ(Status(login.Process(p).response), login_status::kInitiatorError);
  }
  {
    Login login(config);
    Pdu p = LoginRequest(Flags(true, kOperational, kFull), kNames);
    p.bhs[3] = 1;  // Version-min
    EXPECT_EQ(Status(login.Process(p).response), login_status::kUnsupportedVersion);
  }
  {
    Login login(config);  // transit backwards
    EXPECT_EQ(
        Status(login.Process(LoginRequest(Flags(true, kOperational, kSecurity), kNames)).response),
        login_status::kInitiatorError);
  }
  {
    Login login(config);  // CSG 2 is reserved
    EXPECT_EQ(Status(login.Process(LoginRequest(Flags(false, 2, 0), kNames)).response),
              login_status::kInitiatorError);
  }
  {
    Login login(config);  // re-offer with another value
    login.Process(LoginRequest(Flags(false, kOperational, 0),
                               {kNames[0], kNames[1], {"MaxBurstLength", "65536"}}));
    EXPECT_EQ(Status(login
                         .Process(LoginRequest(Flags(true, kOperational, kFull),
                                               {{"MaxBurstLength", "512"}}))
                         .response),
              login_status::kInitiatorError);
  }
}

TEST_F(TransportLoginTest, ContinuedKeyText) {
  Login login(config);
  const std::vector<uint8_t> all = SerializeTextKeys(kNames);
  Pdu part1 = LoginRequest(kC | kOperational << 2, {});
  part1.set_data(std::vector<uint8_t>(all.begin(), all.begin() + 10));
  auto s1 = login.Process(part1);
  ASSERT_EQ(s1.kind, Login::Step::Kind::kReply);
  EXPECT_TRUE(s1.response.data.empty());
  Pdu part2 = LoginRequest(Flags(true, kOperational, kFull), {});
  part2.set_data(std::vector<uint8_t>(all.begin() + 10, all.end()));
  ASSERT_EQ(login.Process(part2).kind, Login::Step::Kind::kComplete);
  EXPECT_EQ(login.target_name(), "iqn.2026-11.io.kelpie:disk");
}

TEST_F(TransportLoginTest, Discovery) {
  Login login(config);
  auto s =
      login.Process(LoginRequest(Flags(true, kOperational, kFull), {{"InitiatorName", "iqn.x"},
                                                                    {"SessionType", "Discovery"},
                                                                    {"MaxBurstLength", "65536"},
                                                                    {"HeaderDigest", "None"}}));
  ASSERT_EQ(s.kind, Login::Step::Kind::kComplete);
  EXPECT_TRUE(login.discovery());
  const KeyValues answer = Keys(login.FinalResponse(1));
  EXPECT_EQ(FindKey(answer, "MaxBurstLength"), kIrrelevant);
  EXPECT_EQ(FindKey(answer, "HeaderDigest"), "None");
  EXPECT_FALSE(FindKey(answer, "TargetPortalGroupTag"));
}

class TransportChapLoginTest : public TransportLoginTest {
 protected:
  TransportChapLoginTest() { config.chap = ChapCredentials{"alice", "secret-of-alice"}; }
};

TEST_F(TransportChapLoginTest, ThreeStepExchange) {
  Login login(config);
  KeyValues first = kNames;
  first.emplace_back("AuthMethod", "CHAP,None");
  auto s1 = login.Process(LoginRequest(Flags(true, kSecurity, kOperational), first));
  ASSERT_EQ(s1.kind, Login::Step::Kind::kReply);
  EXPECT_EQ(s1.response.flags() & kT, 0);  // CHAP still to come
  EXPECT_EQ(FindKey(Keys(s1.response), "AuthMethod"), "CHAP");
  EXPECT_EQ(FindKey(Keys(s1.response), "TargetPortalGroupTag"), "1");

  auto s2 = login.Process(LoginRequest(Flags(false, kSecurity, 0), {{"CHAP_A", "5"}}));
  ASSERT_EQ(s2.kind, Login::Step::Kind::kReply);
  const KeyValues ch = Keys(s2.response);
  const uint8_t id = uint8_t(*ParseNumber(*FindKey(ch, "CHAP_I")));
  const auto challenge = *FromChapHex(*FindKey(ch, "CHAP_C"));
  const auto response = ChapResponse(id, "secret-of-alice", challenge);

  auto s3 = login.Process(LoginRequest(Flags(true, kSecurity, kOperational),
                                       {{"CHAP_N", "alice"}, {"CHAP_R", ToChapHex(response)}}));
  ASSERT_EQ(s3.kind, Login::Step::Kind::kReply);
  EXPECT_EQ(s3.response.flags(), kT | kSecurity << 2 | kOperational);
  ASSERT_EQ(login.Process(LoginRequest(Flags(true, kOperational, kFull), {})).kind,
            Login::Step::Kind::kComplete);
}

TEST_F(TransportChapLoginTest, WrongSecretIs0201) {
  Login login(config);
  KeyValues first = kNames;
  first.emplace_back("AuthMethod", "CHAP");
  login.Process(LoginRequest(Flags(true, kSecurity, kOperational), first));
  login.Process(LoginRequest(Flags(false, kSecurity, 0), {{"CHAP_A", "5"}}));
  auto s = login.Process(
      LoginRequest(Flags(true, kSecurity, kOperational),
                   {{"CHAP_N", "alice"}, {"CHAP_R", "0x00112233445566778899aabbccddeeff"}}));
  ASSERT_EQ(s.kind, Login::Step::Kind::kFail);
  EXPECT_EQ(Status(s.response), login_status::kAuthenticationFailure);
}

TEST_F(TransportChapLoginTest, SkippingSecurityIs0201) {
  Login login(config);
  auto s = login.Process(LoginRequest(Flags(true, kOperational, kFull), kNames));
  ASSERT_EQ(s.kind, Login::Step::Kind::kFail);
  EXPECT_EQ(Status(s.response), login_status::kAuthenticationFailure);
  Login none(config);
  KeyValues first = kNames;
  first.emplace_back("AuthMethod", "None");
  EXPECT_EQ(
      Status(none.Process(LoginRequest(Flags(true, kSecurity, kOperational), first)).response),
      login_status::kAuthenticationFailure);
}

}  // namespace
}  // namespace kelpie::iscsi
