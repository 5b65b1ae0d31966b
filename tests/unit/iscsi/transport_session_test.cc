#include <gtest/gtest.h>

#include "iscsi/transport/session.h"

namespace kelpie::iscsi {
namespace {

Pdu Command(uint32_t cmdsn) {
  Pdu p = Pdu::Make(op::kScsiCommand, flag::kFinal, cmdsn);
  p.set_u32(off::kCmdSn, cmdsn);
  return p;
}

Session MakeSession(uint32_t exp, uint32_t window) {
  return Session({"iqn.i", "800000000001", 1, "iqn.t", false}, SessionParams{}, nullptr, 7, exp,
                 window);
}

TEST(TransportSession, NexusIdentity) {
  Session s = MakeSession(10, 4);
  EXPECT_EQ(s.nexus().initiator, "iqn.i");
  EXPECT_EQ(s.nexus().isid, "800000000001");
  EXPECT_EQ(s.nexus().rel_port, 7);
}

TEST(TransportSession, InOrderAdvancesExpCmdSn) {
  Session s = MakeSession(10, 4);
  EXPECT_EQ(s.max_cmdsn(), 13u);
  EXPECT_EQ(s.Admit(Command(10)), Session::Admission::kNow);
  EXPECT_EQ(s.exp_cmdsn(), 11u);
  EXPECT_EQ(s.max_cmdsn(), 14u);  // nothing in flight: the window moves on
}

TEST(TransportSession, WindowClosesWhileCommandsRunAndReopens) {
  Session s = MakeSession(10, 2);
  ASSERT_EQ(s.Admit(Command(10)), Session::Admission::kNow);
  s.CommandStarted();
  ASSERT_EQ(s.Admit(Command(11)), Session::Admission::kNow);
  s.CommandStarted();
  EXPECT_EQ(s.max_cmdsn(), 11u);  // ExpCmdSN 12 − 1: closed
  EXPECT_EQ(s.Admit(Command(12)), Session::Admission::kDropped);
  s.CommandFinished();
  EXPECT_EQ(s.max_cmdsn(), 12u);
  EXPECT_EQ(s.Admit(Command(12)), Session::Admission::kNow);
}

TEST(TransportSession, DropsDuplicatesAndOutOfWindow) {
  Session s = MakeSession(10, 4);
  EXPECT_EQ(s.Admit(Command(9)), Session::Admission::kDropped);   // ExpCmdSN − 1
  EXPECT_EQ(s.Admit(Command(14)), Session::Admission::kDropped);  // MaxCmdSN + 1
  EXPECT_EQ(s.exp_cmdsn(), 10u);
  EXPECT_EQ(s.Admit(Command(10)), Session::Admission::kNow);
  EXPECT_EQ(s.Admit(Command(10)), Session::Admission::kDropped);
}

TEST(TransportSession, HoldsGapsUntilFilled) {
  Session s = MakeSession(10, 8);
  EXPECT_EQ(s.Admit(Command(12)), Session::Admission::kHeld);
  EXPECT_EQ(s.Admit(Command(12)), Session::Admission::kDropped);
  EXPECT_EQ(s.Admit(Command(11)), Session::Admission::kHeld);
  EXPECT_FALSE(s.TakeReady());
  EXPECT_EQ(s.Admit(Command(10)), Session::Admission::kNow);
  auto a = s.TakeReady();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->u32(off::kCmdSn), 11u);
  auto b = s.TakeReady();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->u32(off::kCmdSn), 12u);
  EXPECT_FALSE(s.TakeReady());
  EXPECT_EQ(s.exp_cmdsn(), 13u);
}

TEST(TransportSession, WrapsAround) {
  Session s = MakeSession(0xffffffffu, 4);
  EXPECT_EQ(s.Admit(Command(0xffffffffu)), Session::Admission::kNow);
  EXPECT_EQ(s.Admit(Command(0)), Session::Admission::kNow);
  EXPECT_EQ(s.exp_cmdsn(), 1u);
}

TEST(TransportSession, AbortBeforeArrival) {
  Session s = MakeSession(10, 4);
  EXPECT_FALSE(s.RecordAbortOfUnreceived(9));  // already received: "task does not exist"
  EXPECT_TRUE(s.RecordAbortOfUnreceived(11));
  EXPECT_TRUE(s.TakeAbortedBeforeArrival(11));
  EXPECT_FALSE(s.TakeAbortedBeforeArrival(11));
}

}  // namespace
}  // namespace kelpie::iscsi
