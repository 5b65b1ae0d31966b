#include <gtest/gtest.h>

#include "iscsi/transport/chap.h"

namespace kelpie::iscsi {
namespace {

std::vector<uint8_t> Challenge16() {
  std::vector<uint8_t> c(16);
  for (int i = 0; i < 16; ++i) c[i] = uint8_t(i + 1);
  return c;
}

TEST(TransportChap, ResponseIsMd5OfIdSecretChallenge) {
  // Expected value computed independently (Python hashlib.md5).
  const auto r = ChapResponse(7, "secret-of-alice", Challenge16());
  EXPECT_EQ(ToChapHex(r), "0x23545cb23128fa277002c075b03bf47d");
  const auto m = ChapResponse(200, "tgtsecret", std::vector<uint8_t>(8, 0xaa));
  EXPECT_EQ(ToChapHex(m), "0x5513dd268c1ba86c951899f940e8fffc");
}

TEST(TransportChap, HexCoding) {
  EXPECT_EQ(FromChapHex("0x0aFF"), (std::vector<uint8_t>{0x0a, 0xff}));
  EXPECT_EQ(FromChapHex("0XabC"), (std::vector<uint8_t>{0x0a, 0xbc}));
  EXPECT_FALSE(FromChapHex("abcd"));
  EXPECT_FALSE(FromChapHex("0xzz"));
  EXPECT_FALSE(FromChapHex("0x"));
  EXPECT_EQ(ToChapHex(std::vector<uint8_t>{1, 0xab}), "0x01ab");
}

TEST(TransportChap, ConstantTimeEqual) {
  const std::vector<uint8_t> a = {1, 2, 3}, b = {1, 2, 3}, c = {1, 2, 4}, d = {1, 2};
  EXPECT_TRUE(ConstantTimeEqual(a, b));
  EXPECT_FALSE(ConstantTimeEqual(a, c));
  EXPECT_FALSE(ConstantTimeEqual(a, d));
}

TEST(TransportChap, ParseCredentials) {
  auto c = ParseChapCredentials("alice:pa:ss");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->secret, "pa:ss");
  EXPECT_FALSE(ParseChapCredentials("alice"));
  EXPECT_FALSE(ParseChapCredentials(":x"));
  EXPECT_FALSE(ParseChapCredentials("x:"));
}

class TransportChapFlow : public ::testing::Test {
 protected:
  ChapAuthenticator Make(std::optional<ChapCredentials> mutual = std::nullopt) {
    ChapAuthenticator a({"alice", "secret-of-alice"}, std::move(mutual));
    a.SetChallengeForTest(7, Challenge16());
    return a;
  }
};

TEST_F(TransportChapFlow, OneWaySuccess) {
  auto auth = Make();
  auto s1 = auth.Process({{"CHAP_A", "7,5"}});
  EXPECT_EQ(s1.outcome, ChapAuthenticator::Outcome::kContinue);
  EXPECT_EQ(FindKey(s1.reply, "CHAP_A"), "5");
  EXPECT_EQ(FindKey(s1.reply, "CHAP_I"), "7");
  EXPECT_EQ(FindKey(s1.reply, "CHAP_C"), ToChapHex(Challenge16()));
  auto s2 = auth.Process({{"CHAP_N", "alice"}, {"CHAP_R", "0x23545cb23128fa277002c075b03bf47d"}});
  EXPECT_EQ(s2.outcome, ChapAuthenticator::Outcome::kAuthenticated);
  EXPECT_TRUE(s2.reply.empty());
  EXPECT_TRUE(auth.authenticated());
}

TEST_F(TransportChapFlow, WrongSecretFails) {
  auto auth = Make();
  auth.Process({{"CHAP_A", "5"}});
  const auto wrong = ChapResponse(7, "not-the-secret", Challenge16());
  auto s = auth.Process({{"CHAP_N", "alice"}, {"CHAP_R", ToChapHex(wrong)}});
  EXPECT_EQ(s.outcome, ChapAuthenticator::Outcome::kFailed);
  EXPECT_NE(s.why.find("wrong CHAP response"), std::string::npos);
}

TEST_F(TransportChapFlow, UnknownUserAndMissingMd5Fail) {
  auto auth = Make();
  auth.Process({{"CHAP_A", "5"}});
  EXPECT_EQ(auth.Process({{"CHAP_N", "bob"}, {"CHAP_R", "0x00"}}).outcome,
            ChapAuthenticator::Outcome::kFailed);
  auto other = Make();
  EXPECT_EQ(other.Process({{"CHAP_A", "6,7"}}).outcome, ChapAuthenticator::Outcome::kFailed);
}

TEST_F(TransportChapFlow, Mutual) {
  auto auth = Make(ChapCredentials{"target-user", "tgtsecret"});
  auth.Process({{"CHAP_A", "5"}});
  auto s = auth.Process({{"CHAP_N", "alice"},
                         {"CHAP_R", "0x23545cb23128fa277002c075b03bf47d"},
                         {"CHAP_I", "200"},
                         {"CHAP_C", "0xaaaaaaaaaaaaaaaa"}});
  EXPECT_EQ(s.outcome, ChapAuthenticator::Outcome::kAuthenticated);
  EXPECT_EQ(FindKey(s.reply, "CHAP_N"), "target-user");
  EXPECT_EQ(FindKey(s.reply, "CHAP_R"), "0x5513dd268c1ba86c951899f940e8fffc");
}

TEST_F(TransportChapFlow, MutualWithoutSecretOrReflectedChallengeFails) {
  auto auth = Make();
  auth.Process({{"CHAP_A", "5"}});
  EXPECT_EQ(auth.Process({{"CHAP_N", "alice"},
                          {"CHAP_R", "0x23545cb23128fa277002c075b03bf47d"},
                          {"CHAP_I", "1"},
                          {"CHAP_C", "0xaaaa"}})
                .outcome,
            ChapAuthenticator::Outcome::kFailed);
  auto reflect = Make(ChapCredentials{"t", "tgtsecret"});
  reflect.Process({{"CHAP_A", "5"}});
  EXPECT_EQ(reflect
                .Process({{"CHAP_N", "alice"},
                          {"CHAP_R", "0x23545cb23128fa277002c075b03bf47d"},
                          {"CHAP_I", "7"},
                          {"CHAP_C", ToChapHex(Challenge16())}})
                .outcome,
            ChapAuthenticator::Outcome::kFailed);
}

TEST(TransportChapRandom, ChallengesDiffer) {
  ChapAuthenticator a({"u", "s"}, std::nullopt), b({"u", "s"}, std::nullopt);
  auto sa = a.Process({{"CHAP_A", "5"}});
  auto sb = b.Process({{"CHAP_A", "5"}});
  EXPECT_NE(FindKey(sa.reply, "CHAP_C"), FindKey(sb.reply, "CHAP_C"));
  EXPECT_EQ(FindKey(sa.reply, "CHAP_C")->size(), 2u + 32u);
}

}  // namespace
}  // namespace kelpie::iscsi
