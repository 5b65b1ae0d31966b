#include <gtest/gtest.h>

#include "iscsi/transport/scsi_task.h"

namespace kelpie::iscsi {
namespace {

SessionParams Params() {
  SessionParams p;
  p.initiator_mrdsl = 1024;
  p.max_burst_length = 4096;
  p.first_burst_length = 2048;
  p.initial_r2t = false;
  p.immediate_data = true;
  p.max_outstanding_r2t = 1;
  return p;
}

Pdu Command(bool read, bool write, uint32_t edtl, size_t immediate = 0, bool final = true) {
  Pdu p = Pdu::Make(
      op::kScsiCommand,
      uint8_t((final ? flag::kFinal : 0) | (read ? flag::kRead : 0) | (write ? flag::kWrite : 0)),
      0x42);
  p.set_u32(off::kEdtl, edtl);
  p.set_u32(off::kCmdSn, 5);
  p.bhs[off::kCdb] = write ? 0x2a : 0x28;
  if (immediate) p.set_data(std::vector<uint8_t>(immediate, 0x11));
  return p;
}

Pdu DataOut(uint32_t ttt, uint32_t data_sn, uint32_t offset, uint32_t len, bool final) {
  Pdu p = Pdu::Make(op::kDataOut, final ? flag::kFinal : 0, 0x42);
  p.set_u32(off::kTtt, ttt);
  p.set_u32(off::kDataSn, data_sn);
  p.set_u32(off::kBufferOffset, offset);
  p.set_data(std::vector<uint8_t>(len, uint8_t(offset / 512)));
  return p;
}

TEST(TransportScsiTask, Lun) {
  EXPECT_EQ(DecodeLun(0), 0u);
  EXPECT_EQ(DecodeLun(0x0001000000000000ull), 1u);
  EXPECT_EQ(DecodeLun(0x4123000000000000ull), 0x123u);  // flat space
  EXPECT_EQ(DecodeLun(0x0001000000000001ull), UINT64_MAX);
}

TEST(TransportScsiTask, Residuals) {
  auto r = ComputeResidual(0, 512);
  EXPECT_EQ(r.flags, flag::kResidOverflow);
  EXPECT_EQ(r.count, 512u);
  r = ComputeResidual(10000, 512);
  EXPECT_EQ(r.flags, flag::kResidUnderflow);
  EXPECT_EQ(r.count, 10000u - 512);
  EXPECT_EQ(ComputeResidual(512, 512).flags, 0);
  EXPECT_EQ(ComputeResidual(512, std::nullopt).flags, 0);
}

TEST(TransportScsiTask, DataInSplitsByMrdslAndBurstWithStatusLast) {
  std::string err;
  ScsiTask t(Command(true, false, 10000), Params(), &err);
  ASSERT_TRUE(err.empty());
  EXPECT_TRUE(t.DataComplete());
  scsi::ScsiResult res;
  res.data_in.assign(5000, 0xab);
  res.scsi_length = 5000;
  const auto pdus = t.BuildResponse(res);
  ASSERT_EQ(pdus.size(), 5u);  // 1024 × 4 + 904
  uint32_t offset = 0;
  for (size_t i = 0; i < pdus.size(); ++i) {
    EXPECT_EQ(pdus[i].opcode(), op::kDataIn);
    EXPECT_EQ(pdus[i].u32(off::kDataSn), i);
    EXPECT_EQ(pdus[i].u32(off::kBufferOffset), offset);
    EXPECT_LE(pdus[i].data.size(), 1024u);
    EXPECT_EQ(pdus[i].u32(off::kTtt), kReservedTag);
    EXPECT_EQ(pdus[i].flags() & 0x40, 0);  // never A
    offset += uint32_t(pdus[i].data.size());
  }
  EXPECT_EQ(offset, 5000u);
  EXPECT_TRUE(pdus[3].final_bit());  // 4096 = MaxBurstLength: end of a sequence
  EXPECT_FALSE(pdus[3].flags() & flag::kStatus);
  EXPECT_FALSE(pdus[2].final_bit());
  const Pdu& last = pdus.back();
  EXPECT_EQ(last.flags(), flag::kFinal | flag::kStatus | flag::kResidUnderflow);
  EXPECT_EQ(last.u32(off::kResidual), 5000u);
  EXPECT_EQ(last.bhs[3], scsi::status::kGood);
}

TEST(TransportScsiTask, ReadWithSmallEdtlSendsEdtlAndOverflow) {
  std::string err;
  ScsiTask t(Command(true, false, 200), Params(), &err);
  scsi::ScsiResult res;
  res.data_in.assign(512, 1);
  res.scsi_length = 512;
  const auto pdus = t.BuildResponse(res);
  ASSERT_EQ(pdus.size(), 1u);
  EXPECT_EQ(pdus[0].data.size(), 200u);
  EXPECT_EQ(pdus[0].flags() & flag::kResidOverflow, flag::kResidOverflow);
  EXPECT_EQ(pdus[0].u32(off::kResidual), 312u);
}

TEST(TransportScsiTask, CheckConditionGoesInScsiResponseWithSense) {
  std::string err;
  ScsiTask t(Command(false, true, 0), Params(), &err);
  scsi::ScsiResult res;
  res.status = scsi::status::kCheckCondition;
  res.sense = {0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0};
  res.scsi_length = 512;
  const auto pdus = t.BuildResponse(res);
  ASSERT_EQ(pdus.size(), 1u);
  const Pdu& r = pdus[0];
  EXPECT_EQ(r.opcode(), op::kScsiResponse);
  EXPECT_EQ(r.bhs[2], 0);  // completed at target
  EXPECT_EQ(r.bhs[3], scsi::status::kCheckCondition);
  EXPECT_EQ(r.flags(), flag::kFinal | flag::kResidOverflow);
  EXPECT_EQ(r.u32(off::kResidual), 512u);
  ASSERT_EQ(r.data.size(), 2u + res.sense.size());
  EXPECT_EQ(GetBe16(r.data.data()), res.sense.size());
}

TEST(TransportScsiTask, WriteWithImmediateUnsolicitedAndR2T) {
  std::string err;
  ScsiTask t(Command(false, true, 8192, 512, /*final=*/false), Params(), &err);
  ASSERT_TRUE(err.empty());
  EXPECT_FALSE(t.DataComplete());
  EXPECT_FALSE(t.WantsR2T());  // unsolicited data first
  EXPECT_EQ(t.AcceptDataOut(DataOut(kReservedTag, 0, 512, 1024, false), &err),
            ScsiTask::DataVerdict::kAccepted);
  EXPECT_EQ(t.AcceptDataOut(DataOut(kReservedTag, 1, 1536, 512, true), &err),
            ScsiTask::DataVerdict::kAccepted);  // FirstBurstLength 2048 reached
  ASSERT_TRUE(t.WantsR2T());
  auto r2t = t.NextR2T(77);
  ASSERT_TRUE(r2t);
  EXPECT_EQ(r2t->opcode(), op::kR2T);
  EXPECT_EQ(r2t->u32(off::kTtt), 77u);
  EXPECT_EQ(r2t->u32(off::kDataSn), 0u);  // R2TSN
  EXPECT_EQ(r2t->u32(off::kBufferOffset), 2048u);
  EXPECT_EQ(r2t->u32(off::kResidual), 4096u);  // MaxBurstLength
  EXPECT_FALSE(t.WantsR2T());                  // MaxOutstandingR2T = 1
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(t.AcceptDataOut(DataOut(77, i, 2048 + i * 1024, 1024, i == 3), &err),
              ScsiTask::DataVerdict::kAccepted)
        << err;
  }
  auto r2t2 = t.NextR2T(78);
  ASSERT_TRUE(r2t2);
  EXPECT_EQ(r2t2->u32(off::kDataSn), 1u);
  EXPECT_EQ(r2t2->u32(off::kBufferOffset), 6144u);
  EXPECT_EQ(r2t2->u32(off::kResidual), 2048u);
  EXPECT_EQ(t.AcceptDataOut(DataOut(78, 0, 6144, 1024, false), &err),
            ScsiTask::DataVerdict::kAccepted);
  EXPECT_EQ(t.AcceptDataOut(DataOut(78, 1, 7168, 1024, true), &err),
            ScsiTask::DataVerdict::kComplete);
  const auto data = t.TakeDataOut();
  ASSERT_EQ(data.size(), 8192u);
  EXPECT_EQ(data[0], 0x11);
  EXPECT_EQ(data[7168], 7168 / 512);
  scsi::ScsiResult good;
  good.scsi_length = 8192;
  EXPECT_EQ(t.BuildResponse(good)[0].u32(36), 2u);  // ExpDataSN counts the R2Ts
}

TEST(TransportScsiTask, DataOutValidation) {
  std::string err;
  {
    ScsiTask t(Command(false, true, 1024, 0, false), Params(), &err);
    EXPECT_EQ(t.AcceptDataOut(DataOut(kReservedTag, 1, 0, 512, false), &err),
              ScsiTask::DataVerdict::kError);  // DataSN must start at 0
  }
  {
    ScsiTask t(Command(false, true, 1024, 0, false), Params(), &err);
    EXPECT_EQ(t.AcceptDataOut(DataOut(kReservedTag, 0, 512, 512, false), &err),
              ScsiTask::DataVerdict::kError);  // offset out of order
  }
  {
    ScsiTask t(Command(false, true, 8192, 0, true), Params(), &err);
    EXPECT_EQ(t.AcceptDataOut(DataOut(kReservedTag, 0, 0, 512, false), &err),
              ScsiTask::DataVerdict::kError);  // F=1 on the command: no unsolicited data
    ScsiTask u(Command(false, true, 8192, 0, true), Params(), &err);
    u.NextR2T(5);
    EXPECT_EQ(u.AcceptDataOut(DataOut(6, 0, 0, 512, false), &err), ScsiTask::DataVerdict::kError);
    ScsiTask v(Command(false, true, 8192, 0, true), Params(), &err);
    v.NextR2T(5);
    EXPECT_EQ(v.AcceptDataOut(DataOut(5, 0, 0, 512, true), &err),
              ScsiTask::DataVerdict::kError);  // burst ended early
  }
  {
    err.clear();
    ScsiTask t(Command(true, false, 512, 512), Params(), &err);
    EXPECT_FALSE(err.empty());  // data on a command without W
  }
}

TEST(TransportScsiTask, WriteWithoutDataOrEdtlIsComplete) {
  std::string err;
  ScsiTask t(Command(false, true, 0), Params(), &err);
  EXPECT_TRUE(t.DataComplete());
  EXPECT_FALSE(t.WantsR2T());
  ScsiTask imm(Command(false, true, 512, 512), Params(), &err);
  EXPECT_TRUE(imm.DataComplete());
}

}  // namespace
}  // namespace kelpie::iscsi
