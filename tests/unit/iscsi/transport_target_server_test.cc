#include <gtest/gtest.h>

#include "iscsi/scsi/mem_backend.h"
#include "iscsi/transport/target_server.h"

namespace kelpie::iscsi {
namespace {

constexpr const char* kTarget = "iqn.2026-11.io.kelpie:disk";

TEST(TransportTargetServer, ParsePortal) {
  auto p = ParsePortal("127.0.0.1:3260");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->host, "127.0.0.1");
  EXPECT_EQ(p->port, 3260);
  auto v6 = ParsePortal("[::1]:3261");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 3261);
  EXPECT_TRUE(ParsePortal("0.0.0.0:20000"));
  EXPECT_FALSE(ParsePortal("localhost:3260"));  // addresses only
  EXPECT_FALSE(ParsePortal("127.0.0.1"));
  EXPECT_FALSE(ParsePortal("127.0.0.1:0"));
  EXPECT_FALSE(ParsePortal("127.0.0.1:70000"));
  EXPECT_FALSE(ParsePortal("[::1]3260"));
}

class TransportTargetServerTest : public ::testing::Test {
 protected:
  TransportTargetServerTest() {
    cfg.portals = {*ParsePortal("0.0.0.0:3260"), *ParsePortal("[fe80::1]:3261"),
                   *ParsePortal("10.0.0.5:3262")};
    cfg.rel_port = 9;
    cfg.login.portal_group_tag = 4;
    server = std::make_unique<TargetServer>(io, cfg);
    lu = std::make_shared<scsi::LogicalUnit>(
        scsi::MakeMemBackend(scsi::MakeMemStore("disk", 1 << 20)), scsi::LuConfig{});
    server->AddTarget(kTarget, lu);
  }

  // A completed login of initiator/ISID with the given TSIH.
  std::unique_ptr<Login> CompletedLogin(uint8_t isid_last, uint16_t tsih) {
    auto login = std::make_unique<Login>(server->config().login);
    Pdu p = Pdu::Make(0x40 | op::kLoginRequest, 0x87, 1);
    p.bhs[8] = 0x80;
    p.bhs[13] = isid_last;
    p.set_u16(14, tsih);
    p.set_data(SerializeTextKeys({{"InitiatorName", "iqn.i"}, {"TargetName", kTarget}}));
    EXPECT_EQ(login->Process(p).kind, Login::Step::Kind::kComplete);
    return login;
  }

  asio::io_context io;
  ServerConfig cfg;
  std::unique_ptr<TargetServer> server;
  std::shared_ptr<scsi::LogicalUnit> lu;
};

TEST_F(TransportTargetServerTest, SendTargets) {
  const asio::ip::tcp::endpoint local(asio::ip::make_address("192.168.1.7"), 3260);
  const KeyValues all = server->SendTargets("All", "", local);
  const KeyValues expected = {{"TargetName", kTarget},
                              {"TargetAddress", "192.168.1.7:3260,4"},
                              {"TargetAddress", "[fe80::1]:3261,4"},
                              {"TargetAddress", "10.0.0.5:3262,4"}};
  EXPECT_EQ(all, expected);
  EXPECT_EQ(server->SendTargets("", kTarget, local), expected);
  EXPECT_EQ(server->SendTargets(kTarget, "", local), expected);
  EXPECT_TRUE(server->SendTargets("iqn.nope", "", local).empty());
}

TEST_F(TransportTargetServerTest, TargetLookupAndLoginCheck) {
  EXPECT_EQ(server->FindTarget(kTarget), lu);
  EXPECT_FALSE(server->FindTarget("iqn.nope"));
  EXPECT_FALSE(server->ResolveTarget("iqn.nope"));  // no resolver
  EXPECT_TRUE(server->config().login.target_exists(kTarget));
}

TEST_F(TransportTargetServerTest, SessionsReinstatementAndTsih) {
  auto first = CompletedLogin(1, 0);
  auto a = server->AdmitSession(*first, lu);
  ASSERT_TRUE(a.session);
  EXPECT_NE(a.session->id().tsih, 0);
  EXPECT_EQ(a.session->nexus().rel_port, 9);
  EXPECT_EQ(a.session->nexus().isid, "800000000001");
  std::string closed_why;
  a.session->set_closer([&](const std::string& why) {
    closed_why = why;
    server->SessionEnded(a.session.get());
  });

  // Another connection to the same session (TSIH given): MaxConnections=1.
  auto second_conn = CompletedLogin(1, a.session->id().tsih);
  EXPECT_EQ(server->AdmitSession(*second_conn, lu).status, login_status::kTooManyConnections);
  // Unknown TSIH.
  auto unknown = CompletedLogin(2, 999);
  EXPECT_EQ(server->AdmitSession(*unknown, lu).status, login_status::kSessionDoesNotExist);

  // Same initiator + ISID with TSIH 0: the old session is closed and its nexus handed over.
  auto again = CompletedLogin(1, 0);
  auto b = server->AdmitSession(*again, lu);
  ASSERT_TRUE(b.session);
  EXPECT_TRUE(b.reinstated);
  EXPECT_TRUE(a.session->nexus_handed_over);
  EXPECT_FALSE(closed_why.empty());
  EXPECT_NE(b.session->id().tsih, a.session->id().tsih);
  EXPECT_EQ(server->SessionsOf(lu.get()).size(), 1u);
  server->SessionEnded(b.session.get());
  EXPECT_TRUE(server->SessionsOf(lu.get()).empty());
}

}  // namespace
}  // namespace kelpie::iscsi
