// SBC-3 data transfer: READ, WRITE, VERIFY, WRITE AND VERIFY (6/10/12/16 CDBs share one handler
// each) and COMPARE AND WRITE.
//
// Residuals (iscsi.md §3): the command transfers min(EDTL, CDB length), writes floor(that / block
// size) blocks, returns GOOD and reports the CDB length as scsi_length; the transport derives the
// O/U residual from it.
#include <spdlog/spdlog.h>

#include "iscsi/scsi/block_limits.h"
#include "iscsi/scsi/bytes.h"
#include "iscsi/scsi/handlers.h"
#include "iscsi/scsi/sbc_common.h"
#include "iscsi/scsi/sense.h"

namespace kelpie::scsi {
namespace {

constexpr uint8_t kProtectMask = 0xE0;  // RD/WR/VRPROTECT: no protection information supported
constexpr uint8_t kBytchk = 0x02;

// The checks every block command makes after decoding: PROTECT field (not for 6-byte CDBs),
// range, transfer limit. Sets req.scsi_length to `scsi_bytes` first.
std::optional<ScsiResult> CheckBlockIo(Request& req, const BlockIo& io, uint64_t scsi_bytes) {
  req.scsi_length = ClampToU32(scsi_bytes);
  if (req.cdb.size() > 6 && (req.cdb[1] & kProtectMask)) return InvalidCdbField(1, 7);
  if (!InRange(io.lba, io.blocks, req.Blocks())) return CheckCondition(sense::kLbaOutOfRange);
  if (io.blocks > BlockLimits{req.cfg.block_size}.MaxTransferBlocks()) {
    return InvalidCdbField(io.length_field);
  }
  return std::nullopt;
}

// The write data usable for this command: min(data-out, CDB length) cut to whole blocks.
std::span<const uint8_t> WholeBlocksOfData(const Request& req, const BlockIo& io) {
  const uint64_t bs = req.cfg.block_size;
  const uint64_t usable = std::min<uint64_t>(req.cmd.data_out.size(), uint64_t{io.blocks} * bs);
  return std::span<const uint8_t>(req.cmd.data_out).first(usable / bs * bs);
}

// Compares `expected` with the medium at io.lba; GOOD, MISCOMPARE (INFORMATION = offset of the
// first differing byte) or a read failure.
ScsiResult CompareWithMedium(Request& req, const BlockIo& io, std::span<const uint8_t> expected) {
  std::vector<uint8_t> medium(expected.size());
  IoStatus st = req.io.Read(io.lba * req.cfg.block_size, medium);
  if (st != IoStatus::kOk) return BackendFailure(st, IoKind::kRead);
  if (auto at = FirstDifference(medium, expected)) {
    return CheckCondition(sense::kMiscompareDuringVerify, *at);
  }
  return Good();
}

// write_back: the write may stay in the LU's volatile write cache (acknowledged on every copy,
// durable at the next SYNCHRONIZE CACHE); otherwise it is durable before GOOD.
ScsiResult WriteData(Request& req, uint64_t offset, std::span<const uint8_t> data,
                     bool write_back = false) {
  if (data.empty()) return Good();
  IoStatus st = req.io.Write(offset, data, write_back);
  return st == IoStatus::kOk ? Good() : BackendFailure(st, IoKind::kWrite);
}

}  // namespace

std::variant<ScsiResult, DataTransfer> PlanTransfer(Request& req, bool write) {
  const BlockIo io = DecodeBlockIo(req.cdb);
  const uint64_t length = uint64_t{io.blocks} * req.cfg.block_size;
  if (auto error = CheckBlockIo(req, io, length)) return std::move(*error);
  DataTransfer t;
  t.offset = io.lba * req.cfg.block_size;
  if (write) {
    t.bytes = WholeBlocksOfData(req, io).size();
    // With the write cache enabled (WCE) a write is acknowledged once it is on every copy and
    // made durable by SYNCHRONIZE CACHE; FUA asks for it durable before GOOD.
    t.write_back = req.shared.state.write_cache && !io.fua;
  } else {
    // A READ sent with only the W flag transfers nothing back.
    t.bytes = (req.cmd.write && !req.cmd.read) ? 0 : std::min<uint64_t>(req.cmd.edtl, length);
  }
  if (t.bytes == 0) return Good();
  return t;
}

ScsiResult HandleRead(Request& req) {
  auto plan = PlanTransfer(req, false);
  if (auto* done = std::get_if<ScsiResult>(&plan)) return std::move(*done);
  const DataTransfer& t = std::get<DataTransfer>(plan);
  ScsiResult result;
  result.data_in.resize(t.bytes);
  IoStatus st = req.io.Read(t.offset, result.data_in);
  if (st != IoStatus::kOk) return BackendFailure(st, IoKind::kRead);
  return result;
}

ScsiResult HandleWrite(Request& req) {
  auto plan = PlanTransfer(req, true);
  if (auto* done = std::get_if<ScsiResult>(&plan)) return std::move(*done);
  const DataTransfer& t = std::get<DataTransfer>(plan);
  return WriteData(req, t.offset, std::span(req.cmd.data_out).first(t.bytes), t.write_back);
}

ScsiResult HandleVerify(Request& req) {
  const BlockIo io = DecodeBlockIo(req.cdb);
  const bool bytchk = req.cdb[1] & kBytchk;
  if (auto error = CheckBlockIo(req, io, bytchk ? uint64_t{io.blocks} * req.cfg.block_size : 0)) {
    return *error;
  }
  // BYTCHK=0: the medium is always readable (the backend reports failures on access).
  if (!bytchk) return Good();
  const uint64_t bytes =
      std::min<uint64_t>(req.cmd.data_out.size(), uint64_t{io.blocks} * req.cfg.block_size);
  return CompareWithMedium(req, io, std::span<const uint8_t>(req.cmd.data_out).first(bytes));
}

ScsiResult HandleWriteAndVerify(Request& req) {
  const BlockIo io = DecodeBlockIo(req.cdb);
  if (auto error = CheckBlockIo(req, io, uint64_t{io.blocks} * req.cfg.block_size)) return *error;
  const auto data = WholeBlocksOfData(req, io);
  ScsiResult written = WriteData(req, io.lba * req.cfg.block_size, data);
  if (written.status != status::kGood || !(req.cdb[1] & kBytchk) || data.empty()) return written;
  return CompareWithMedium(req, io, data);
}

ScsiResult HandleCompareAndWrite(Request& req) {
  const uint64_t lba = GetBe64(req.cdb, 2);
  const uint32_t blocks = req.cdb[13];
  const uint64_t half = uint64_t{blocks} * req.cfg.block_size;
  req.scsi_length = ClampToU32(2 * half);
  if (req.cdb[1] & kProtectMask) return InvalidCdbField(1, 7);
  if (blocks > BlockLimits::kMaxCompareAndWriteBlocks) return InvalidCdbField(13);
  // The data-out buffer holds the verify blocks then the write blocks (NUMBER OF LOGICAL BLOCKS
  // 0 with data means the initiator meant 256, which is beyond the limit).
  if (req.cmd.edtl != 2 * half) return InvalidCdbField(13);
  if (!InRange(lba, blocks, req.Blocks())) return CheckCondition(sense::kLbaOutOfRange);
  if (blocks == 0) return Good();
  if (req.cmd.data_out.size() < 2 * half) return CheckCondition(sense::kInvalidFieldInCommandIu);

  std::span<const uint8_t> data(req.cmd.data_out);
  uint64_t miscompare_at = 0;
  IoStatus st = req.io.CompareAndWrite(lba * req.cfg.block_size, data.first(half),
                                       data.subspan(half, half), &miscompare_at);
  switch (st) {
    case IoStatus::kOk:
      return Good();
    case IoStatus::kMiscompare:
      return CheckCondition(sense::kMiscompareDuringVerify, miscompare_at);
    default:
      return BackendFailure(st, IoKind::kWrite);
  }
}

}  // namespace kelpie::scsi
