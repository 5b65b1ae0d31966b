// SBC-3 capacity, logical block provisioning and cache commands: READ CAPACITY(10/16), WRITE
// SAME(10/16), UNMAP, GET LBA STATUS, SYNCHRONIZE CACHE(10/16), PRE-FETCH(10/16).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "iscsi/scsi/block_limits.h"
#include "iscsi/scsi/bytes.h"
#include "iscsi/scsi/handlers.h"
#include "iscsi/scsi/sbc_common.h"
#include "iscsi/scsi/sense.h"

namespace kelpie::scsi {
namespace {

constexpr uint8_t kWsAnchor = 0x10, kWsUnmap = 0x08, kWsNdob = 0x01;
constexpr uint64_t kWriteSameChunkBytes = 1 << 20;  // pattern buffer for non-unmapping WRITE SAME
constexpr size_t kMaxLbaStatusDescriptors = 64;
constexpr int kMaxLbaStatusProbes = 1024;  // backend MapStatus calls per command

// One provisioning run: `blocks` blocks from some LBA that are all mapped or all deallocated.
struct ProvisioningRun {
  bool mapped;
  uint64_t blocks;
};

// The status of the blocks from `lba` (< capacity). The backend answers at byte granularity: a
// block with any mapped byte counts as mapped.
std::optional<ProvisioningRun> ProbeRun(Request& req, uint64_t lba, uint64_t capacity_blocks) {
  const uint64_t bs = req.cfg.block_size;
  const uint64_t offset = lba * bs;
  const uint64_t len = (capacity_blocks - lba) * bs;
  bool mapped = false;
  uint64_t run = 0;
  if (req.io.MapStatus(offset, len, &mapped, &run) != IoStatus::kOk || run == 0) {
    return std::nullopt;
  }
  run = std::min(run, len);
  if (mapped) return ProvisioningRun{true, (run + bs - 1) / bs};  // partial last block: mapped
  if (run < bs) return ProvisioningRun{true, 1};  // unmapped prefix, mapped bytes later in block
  return ProvisioningRun{false, run / bs};
}

}  // namespace

ScsiResult HandleReadCapacity10(Request& req) {
  const uint64_t blocks = req.Blocks();
  const uint64_t last = blocks ? blocks - 1 : 0;
  std::vector<uint8_t> d(8, 0);
  PutBe32(d, 0, std::min<uint64_t>(last, 0xFFFFFFFF));
  PutBe32(d, 4, req.cfg.block_size);
  return DataIn(std::move(d), 8);
}

ScsiResult HandleReadCapacity16(Request& req) {
  const uint64_t blocks = req.Blocks();
  const uint32_t alloc = GetBe32(req.cdb, 10);
  std::vector<uint8_t> d(32, 0);
  PutBe64(d, 0, blocks ? blocks - 1 : 0);
  PutBe32(d, 8, req.cfg.block_size);
  d[14] = 0x80 | 0x40;  // LBPME (thin provisioned), LBPRZ (unmapped blocks read as zeros)
  return DataIn(std::move(d), alloc);
}

ScsiResult HandleWriteSame(Request& req) {
  const BlockIo io = DecodeBlockIo(req.cdb);
  const bool is16 = req.cdb[0] == 0x93;
  const uint8_t flags = req.cdb[1];
  const bool ndob = is16 && (flags & kWsNdob);
  const uint64_t bs = req.cfg.block_size;
  req.scsi_length = ndob ? 0 : ClampToU32(bs);
  if (flags & 0xE0) return InvalidCdbField(1, 7);       // WRPROTECT: no protection information
  if (flags & kWsAnchor) return InvalidCdbField(1, 4);  // ANC_SUP=0
  if (!InRange(io.lba, io.blocks, req.Blocks())) return CheckCondition(sense::kLbaOutOfRange);
  if (io.blocks == 0) return InvalidCdbField(io.length_field);  // WSNZ=1
  if (io.blocks > BlockLimits{req.cfg.block_size}.MaxWriteSameBlocks()) {
    return InvalidCdbField(io.length_field);
  }
  if (!ndob && req.cmd.data_out.size() < bs) return CheckCondition(sense::kInvalidFieldInCommandIu);

  std::vector<uint8_t> pattern(bs, 0);
  if (!ndob) std::copy_n(req.cmd.data_out.begin(), bs, pattern.begin());
  const bool zeros = std::all_of(pattern.begin(), pattern.end(), [](uint8_t b) { return b == 0; });
  const uint64_t offset = io.lba * bs;
  const uint64_t total = uint64_t{io.blocks} * bs;
  // UNMAP with a zero pattern deallocates (LBPRZ=1 makes that read back as the pattern);
  // otherwise the pattern is written to every block.
  if ((flags & kWsUnmap) && zeros) {
    IoStatus st = req.io.Discard(offset, total);
    return st == IoStatus::kOk ? Good() : BackendFailure(st, IoKind::kWrite);
  }
  std::vector<uint8_t> chunk;
  chunk.reserve(std::min(total, kWriteSameChunkBytes));
  while (chunk.size() + bs <= std::min(total, std::max<uint64_t>(kWriteSameChunkBytes, bs))) {
    chunk.insert(chunk.end(), pattern.begin(), pattern.end());
  }
  for (uint64_t done = 0; done < total;) {
    const uint64_t n = std::min<uint64_t>(chunk.size(), total - done);
    IoStatus st = req.io.Write(offset + done, std::span<const uint8_t>(chunk).first(n));
    if (st != IoStatus::kOk) return BackendFailure(st, IoKind::kWrite);
    done += n;
  }
  return Good();
}

ScsiResult HandleUnmap(Request& req) {
  const uint16_t param_length = GetBe16(req.cdb, 7);
  req.scsi_length = param_length;
  if (req.cdb[1] & 0x01) return InvalidCdbField(1, 0);  // ANCHOR: ANC_SUP=0
  if (param_length == 0) return Good();
  const auto params = std::span<const uint8_t>(req.cmd.data_out)
                          .first(std::min<size_t>(req.cmd.data_out.size(), param_length));
  if (params.size() < 8) return CheckCondition(sense::kParamListLengthError);
  const size_t descriptor_bytes = std::min<size_t>(GetBe16(params, 2), params.size() - 8);
  const size_t count = descriptor_bytes / 16;
  const BlockLimits limits{req.cfg.block_size};
  if (count > BlockLimits::kMaxUnmapDescriptors) return InvalidParamField(2);

  uint64_t total_blocks = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t off = 8 + 16 * i;
    const uint64_t lba = GetBe64(params, off);
    const uint32_t blocks = GetBe32(params, off + 8);
    if (!InRange(lba, blocks, req.Blocks())) return CheckCondition(sense::kLbaOutOfRange);
    total_blocks += blocks;
    if (blocks > limits.MaxUnmapBlocks() || total_blocks > limits.MaxUnmapBlocks()) {
      return InvalidParamField(static_cast<uint16_t>(off + 8));
    }
  }
  const uint64_t bs = req.cfg.block_size;
  for (size_t i = 0; i < count; ++i) {
    const size_t off = 8 + 16 * i;
    const uint32_t blocks = GetBe32(params, off + 8);
    if (blocks == 0) continue;
    IoStatus st = req.io.Discard(GetBe64(params, off) * bs, uint64_t{blocks} * bs);
    if (st != IoStatus::kOk) return BackendFailure(st, IoKind::kWrite);
  }
  return Good();
}

ScsiResult HandleGetLbaStatus(Request& req) {
  const uint64_t lba = GetBe64(req.cdb, 2);
  const uint32_t alloc = GetBe32(req.cdb, 10);
  const uint64_t capacity = req.Blocks();
  if (lba >= capacity) return CheckCondition(sense::kLbaOutOfRange);
  const size_t max_descriptors =
      std::clamp<size_t>(alloc < 24 ? 1 : (alloc - 8) / 16, 1, kMaxLbaStatusDescriptors);

  std::vector<ProvisioningRun> runs;
  uint64_t next = lba;
  for (int probes = 0; next < capacity && probes < kMaxLbaStatusProbes; ++probes) {
    auto run = ProbeRun(req, next, capacity);
    if (!run) return CheckCondition(sense::kInternalTargetFailure);
    run->blocks = std::min(run->blocks, capacity - next);
    if (!runs.empty() && runs.back().mapped == run->mapped) {
      runs.back().blocks += run->blocks;  // merge neighbours with the same status
    } else {
      if (runs.size() == max_descriptors) break;
      runs.push_back(*run);
    }
    next += run->blocks;
  }

  std::vector<uint8_t> d(8, 0);
  uint64_t start = lba;
  for (const ProvisioningRun& r : runs) {
    const size_t off = d.size();
    d.resize(off + 16, 0);
    PutBe64(d, off, start);
    PutBe32(d, off + 8, std::min<uint64_t>(r.blocks, 0xFFFFFFFF));
    d[off + 12] = r.mapped ? 0x0 : 0x1;  // PROVISIONING STATUS: mapped / deallocated
    start += r.blocks;
  }
  PutBe32(d, 0, d.size() - 4);
  return DataIn(std::move(d), alloc);
}

ScsiResult HandleSynchronizeCache(Request& req) {
  const BlockIo io = DecodeBlockIo(req.cdb);
  // NUMBER OF LOGICAL BLOCKS 0 means "to the end of the medium".
  if (!InRange(io.lba, io.blocks, req.Blocks())) return CheckCondition(sense::kLbaOutOfRange);
  IoStatus st = req.io.Flush();
  return st == IoStatus::kOk ? Good() : BackendFailure(st, IoKind::kWrite);
}

ScsiResult HandlePreFetch(Request& req) {
  const BlockIo io = DecodeBlockIo(req.cdb);
  if (!InRange(io.lba, io.blocks, req.Blocks())) return CheckCondition(sense::kLbaOutOfRange);
  return Good();  // nothing is cached locally; never CONDITION MET
}

}  // namespace kelpie::scsi
