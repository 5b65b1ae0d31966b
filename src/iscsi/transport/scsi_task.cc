#include "iscsi/transport/scsi_task.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "iscsi/scsi/sense.h"

namespace kelpie::iscsi {

namespace {
constexpr uint8_t kAhsExtendedCdb = 1;
}  // namespace

uint64_t DecodeLun(uint64_t lun_field) {
  const uint8_t b0 = uint8_t(lun_field >> 56), b1 = uint8_t(lun_field >> 48);
  const uint64_t rest = lun_field & 0x0000ffffffffffffull;
  switch (b0 >> 6) {
    case 0:  // peripheral device addressing, bus 0
      return (b0 == 0 && rest == 0) ? b1 : UINT64_MAX;
    case 1:  // flat space addressing
      return rest == 0 ? uint64_t(b0 & 0x3f) << 8 | b1 : UINT64_MAX;
    default:
      return UINT64_MAX;
  }
}

Residual ComputeResidual(uint32_t edtl, std::optional<uint32_t> scsi_length) {
  Residual r;
  if (!scsi_length) return r;
  if (edtl < *scsi_length) {
    r.flags = flag::kResidOverflow;
    r.count = *scsi_length - edtl;
  } else if (edtl > *scsi_length) {
    r.flags = flag::kResidUnderflow;
    r.count = edtl - *scsi_length;
  }
  return r;
}

ScsiTask::ScsiTask(const Pdu& cmd, const SessionParams& params, std::string* error)
    : params_(params) {
  itt = cmd.itt();
  cmdsn = cmd.u32(off::kCmdSn);
  immediate = cmd.immediate();
  lun_field = cmd.lun();
  lun = DecodeLun(lun_field);
  edtl = cmd.u32(off::kEdtl);
  read = cmd.flags() & flag::kRead;
  write = cmd.flags() & flag::kWrite;
  cdb.assign(cmd.bhs.begin() + off::kCdb, cmd.bhs.begin() + off::kCdb + 16);
  // Extended CDB AHS: length (2), type (1), reserved (1), CDB bytes 16.. (length − 1 of them).
  size_t pos = 0;
  while (pos + 4 <= cmd.ahs.size()) {
    const uint16_t len = GetBe16(&cmd.ahs[pos]);
    const uint8_t type = cmd.ahs[pos + 2];
    if (len == 0 || pos + 3 + len > cmd.ahs.size()) {
      *error = "malformed AHS";
      return;
    }
    if (type == kAhsExtendedCdb)
      cdb.insert(cdb.end(), cmd.ahs.begin() + pos + 4, cmd.ahs.begin() + pos + 3 + len);
    pos += PaddedLength(3u + len);
  }
  if (!cmd.data.empty()) {
    if (!write) {
      *error = "data segment on a command without the W bit";
      return;
    }
    if (!params_.immediate_data) {
      *error = "immediate data while ImmediateData=No";
      return;
    }
    if (cmd.data.size() > params_.first_burst_length) {
      *error = fmt::format("immediate data of {} bytes over FirstBurstLength {}", cmd.data.size(),
                           params_.first_burst_length);
      return;
    }
  }
  if (write) {
    const uint32_t take = std::min<uint32_t>(uint32_t(cmd.data.size()), edtl);
    data_out_.assign(cmd.data.begin(), cmd.data.begin() + take);
    received_ = take;
    unsolicited_next_offset_ = take;
    if (!cmd.final_bit() && !params_.initial_r2t && received_ < edtl) {
      unsolicited_open_ = true;
      unsolicited_limit_ = std::min(params_.first_burst_length, edtl);
    }
    next_r2t_offset_ = take;
  }
}

ScsiTask::DataVerdict ScsiTask::AcceptDataOut(const Pdu& pdu, std::string* error) {
  const uint32_t ttt = pdu.u32(off::kTtt);
  const uint32_t data_sn = pdu.u32(off::kDataSn);
  const uint32_t offset = pdu.u32(off::kBufferOffset);
  const uint32_t len = uint32_t(pdu.data.size());
  if (!write) {
    *error = "Data-Out for a command without the W bit";
    return DataVerdict::kError;
  }
  auto store = [&] {
    if (data_out_.size() < size_t(offset) + len) data_out_.resize(size_t(offset) + len);
    if (len) std::memcpy(data_out_.data() + offset, pdu.data.data(), len);
    received_ += len;
  };
  if (ttt == kReservedTag) {
    if (!unsolicited_open_) {
      *error = "unexpected unsolicited Data-Out";
      return DataVerdict::kError;
    }
    if (data_sn != unsolicited_data_sn_ || offset != unsolicited_next_offset_ ||
        uint64_t(offset) + len > unsolicited_limit_) {
      *error = fmt::format(
          "unsolicited Data-Out DataSN {} offset {} length {} (expected DataSN {} "
          "offset {}, limit {})",
          data_sn, offset, len, unsolicited_data_sn_, unsolicited_next_offset_, unsolicited_limit_);
      return DataVerdict::kError;
    }
    store();
    ++unsolicited_data_sn_;
    unsolicited_next_offset_ += len;
    if (pdu.final_bit()) {
      unsolicited_open_ = false;
      next_r2t_offset_ = std::max(next_r2t_offset_, unsolicited_next_offset_);
    }
  } else {
    auto it = r2ts_.find(ttt);
    if (it == r2ts_.end()) {
      *error = fmt::format("Data-Out with unknown TTT {:#x}", ttt);
      return DataVerdict::kError;
    }
    R2tState& r2t = it->second;
    if (data_sn != r2t.next_data_sn || offset != r2t.next_offset ||
        uint64_t(offset) + len > uint64_t(r2t.offset) + r2t.length) {
      *error = fmt::format(
          "Data-Out DataSN {} offset {} length {} (expected DataSN {} offset {} "
          "within burst {}+{})",
          data_sn, offset, len, r2t.next_data_sn, r2t.next_offset, r2t.offset, r2t.length);
      return DataVerdict::kError;
    }
    store();
    ++r2t.next_data_sn;
    r2t.next_offset += len;
    if (pdu.final_bit()) {
      if (r2t.next_offset != r2t.offset + r2t.length) {
        *error = fmt::format("Data-Out burst ended at {} of {}+{}", r2t.next_offset, r2t.offset,
                             r2t.length);
        return DataVerdict::kError;
      }
      r2ts_.erase(it);
    }
  }
  return DataComplete() && r2ts_.empty() ? DataVerdict::kComplete : DataVerdict::kAccepted;
}

bool ScsiTask::WantsR2T() const {
  return write && !unsolicited_open_ && next_r2t_offset_ < edtl &&
         r2ts_.size() < params_.max_outstanding_r2t;
}

uint32_t ScsiTask::PendingR2TLength() const {
  return WantsR2T() ? std::min(params_.max_burst_length, edtl - next_r2t_offset_) : 0;
}

std::optional<Pdu> ScsiTask::NextR2T(uint32_t ttt) {
  if (!WantsR2T()) return std::nullopt;
  const uint32_t len = PendingR2TLength();
  Pdu r = Pdu::Make(op::kR2T, flag::kFinal, itt);
  r.set_lun(lun_field);
  r.set_u32(off::kTtt, ttt);
  r.set_u32(off::kDataSn, r2t_sn_++);
  r.set_u32(off::kBufferOffset, next_r2t_offset_);
  r.set_u32(off::kResidual, len);
  r2ts_[ttt] = R2tState{next_r2t_offset_, len, next_r2t_offset_, 0};
  next_r2t_offset_ += len;
  return r;
}

std::vector<uint8_t> ScsiTask::TakeDataOut() {
  data_out_.resize(std::min<size_t>(data_out_.size(), edtl));
  return std::move(data_out_);
}

Pdu ScsiTask::MakeScsiResponse(const scsi::ScsiResult& result, uint32_t data_in_pdus) const {
  const Residual resid = ComputeResidual(edtl, result.scsi_length);
  Pdu r = Pdu::Make(op::kScsiResponse, uint8_t(flag::kFinal | resid.flags), itt);
  r.set_u8(2, 0x00);  // command completed at target
  r.set_u8(3, result.status);
  r.set_u32(36, data_in_pdus + r2t_sn_);  // ExpDataSN: Data-In and R2T PDUs sent
  r.set_u32(off::kResidual, resid.count);
  if (!result.sense.empty()) {
    std::vector<uint8_t> d(2 + result.sense.size());
    PutBe16(d.data(), uint16_t(result.sense.size()));
    std::copy(result.sense.begin(), result.sense.end(), d.begin() + 2);
    r.set_data(std::move(d));
  }
  return r;
}

std::vector<Pdu> ScsiTask::BuildResponse(const scsi::ScsiResult& result) const {
  std::vector<Pdu> out;
  const bool collapsible =
      result.status == scsi::status::kGood || result.status == 0x04 /* CONDITION MET */;
  const uint32_t to_send =
      (read && collapsible) ? uint32_t(std::min<size_t>(result.data_in.size(), edtl)) : 0;
  if (to_send == 0) {
    out.push_back(MakeScsiResponse(result, 0));
    return out;
  }
  const uint32_t seg = std::max<uint32_t>(params_.initiator_mrdsl, 512);
  const uint32_t burst = std::max<uint32_t>(params_.max_burst_length, seg);
  uint32_t offset = 0, data_sn = 0, burst_used = 0;
  while (offset < to_send) {
    const uint32_t len = std::min({seg, to_send - offset, burst - burst_used});
    const bool last = offset + len == to_send;
    burst_used += len;
    const bool burst_end = last || burst_used == burst;
    if (burst_end) burst_used = 0;
    Pdu d = Pdu::Make(op::kDataIn, burst_end ? flag::kFinal : 0, itt);
    d.set_lun(lun_field);
    d.set_u32(off::kTtt, kReservedTag);
    d.set_u32(off::kDataSn, data_sn++);
    d.set_u32(off::kBufferOffset, offset);
    d.set_data(std::vector<uint8_t>(result.data_in.begin() + offset,
                                    result.data_in.begin() + offset + len));
    if (last) {
      const Residual resid = ComputeResidual(edtl, result.scsi_length);
      d.set_flags(uint8_t(flag::kFinal | flag::kStatus | resid.flags));
      d.set_u8(3, result.status);
      d.set_u32(off::kResidual, resid.count);
    }
    out.push_back(std::move(d));
    offset += len;
  }
  return out;
}

std::vector<Pdu> ScsiTask::BuildCheckCondition(uint8_t key, uint8_t asc, uint8_t ascq) const {
  scsi::ScsiResult r = scsi::CheckCondition(scsi::SenseCode{key, asc, ascq});
  return {MakeScsiResponse(r, 0)};
}

}  // namespace kelpie::iscsi
