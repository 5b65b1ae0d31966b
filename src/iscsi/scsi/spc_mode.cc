// SPC-4 MODE SENSE(6/10) and MODE SELECT(6/10). Pages: Caching (0x08), Control (0x0A),
// Informational Exceptions Control (0x1C). The one changeable field is the Caching page's WCE,
// kept in the LU's shared state so that every target of the LU reports and applies the same
// value; MODE SELECT accepts a parameter list that repeats the current values apart from it.
#include <spdlog/spdlog.h>

#include <optional>

#include "iscsi/scsi/bytes.h"
#include "iscsi/scsi/handlers.h"
#include "iscsi/scsi/sense.h"

namespace kelpie::scsi {
namespace {

constexpr uint8_t kPageCaching = 0x08, kPageControl = 0x0A, kPageInfoExceptions = 0x1C,
                  kPageAll = 0x3F;
constexpr uint8_t kSupportedPages[] = {kPageCaching, kPageControl, kPageInfoExceptions};
constexpr uint8_t kPcChangeable = 1, kPcDefault = 2, kPcSaved = 3;
constexpr uint8_t kDeviceSpecificDpoFua = 0x10;  // DPOFUA; WP=0

constexpr size_t kWceByte = 2;
constexpr uint8_t kWce = 0x04;

// The current value of a mode page, or empty if unsupported.
std::vector<uint8_t> CurrentPage(uint8_t code, const SharedState& state) {
  switch (code) {
    case kPageCaching: {
      // WCE=1: writes without FUA are acknowledged once on every copy and made durable by
      // SYNCHRONIZE CACHE (see BlockBackend::Write).
      std::vector<uint8_t> p(20, 0);
      p[0] = kPageCaching;
      p[1] = 0x12;
      if (state.write_cache) p[kWceByte] = kWce;
      return p;
    }
    case kPageControl: {
      std::vector<uint8_t> p(12, 0);
      p[0] = kPageControl;
      p[1] = 0x0A;
      p[2] = 0x00;  // TST 0 (one task set), D_SENSE 0 (fixed sense)
      p[3] = 0x10;  // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering (workers run in parallel)
      return p;
    }
    case kPageInfoExceptions: {
      std::vector<uint8_t> p(12, 0);
      p[0] = kPageInfoExceptions;
      p[1] = 0x0A;
      p[2] = 0x08;  // DEXCPT: no informational exception reporting
      return p;
    }
    default:
      return {};
  }
}

// The bits of a page MODE SELECT may change (the changeable mask).
std::vector<uint8_t> ChangeableMask(uint8_t code, const SharedState& state) {
  std::vector<uint8_t> p = CurrentPage(code, state);
  std::fill(p.begin() + 2, p.end(), 0);
  if (code == kPageCaching) p[kWceByte] = kWce;
  return p;
}

// The page as MODE SENSE reports it for page control `pc`. Default values are the current ones
// of a fresh LU.
std::vector<uint8_t> PageFor(uint8_t code, uint8_t pc, const SharedState& state) {
  if (pc == kPcChangeable) return ChangeableMask(code, state);
  if (pc == kPcDefault) return CurrentPage(code, SharedState{});
  return CurrentPage(code, state);
}

}  // namespace

ScsiResult HandleModeSense(Request& req) {
  const bool is10 = req.cdb[0] == 0x5A;
  const bool dbd = req.cdb[1] & 0x08;
  const bool llbaa = is10 && (req.cdb[1] & 0x10);
  const uint8_t pc = req.cdb[2] >> 6;
  const uint8_t page = req.cdb[2] & 0x3F;
  const uint8_t subpage = req.cdb[3];
  const uint16_t alloc = is10 ? GetBe16(req.cdb, 7) : req.cdb[4];
  if (pc == kPcSaved) return CheckCondition(sense::kSavingParamsNotSupported);
  if (subpage != 0 && !(page == kPageAll && subpage == 0xFF)) return InvalidCdbField(3);

  std::vector<uint8_t> pages;
  for (uint8_t code : kSupportedPages) {
    if (page != kPageAll && page != code) continue;
    auto p = PageFor(code, pc, req.shared.state);
    pages.insert(pages.end(), p.begin(), p.end());
  }
  if (pages.empty()) return InvalidCdbField(2, 5);

  std::vector<uint8_t> descriptor;
  const uint64_t blocks = req.Blocks();
  if (!dbd && llbaa) {
    descriptor.resize(16, 0);
    PutBe64(descriptor, 0, blocks);
    PutBe32(descriptor, 12, req.cfg.block_size);
  } else if (!dbd) {
    descriptor.resize(8, 0);
    PutBe32(descriptor, 0, std::min<uint64_t>(blocks, 0xFFFFFFFF));
    PutBe(descriptor, 5, 3, req.cfg.block_size);
  }

  std::vector<uint8_t> d;
  if (is10) {
    d.assign(8, 0);
    d[3] = kDeviceSpecificDpoFua;
    d[4] = descriptor.size() == 16 ? 0x01 : 0x00;  // LONGLBA
    PutBe16(d, 6, descriptor.size());
  } else {
    d.assign(4, 0);
    d[2] = kDeviceSpecificDpoFua;
    d[3] = static_cast<uint8_t>(descriptor.size());
  }
  d.insert(d.end(), descriptor.begin(), descriptor.end());
  d.insert(d.end(), pages.begin(), pages.end());
  if (is10) {
    PutBe16(d, 0, d.size() - 2);
  } else {
    d[0] = static_cast<uint8_t>(d.size() - 1);
  }
  return DataIn(std::move(d), alloc);
}

ScsiResult HandleModeSelect(Request& req) {
  const bool is10 = req.cdb[0] == 0x55;
  const uint16_t param_length = is10 ? GetBe16(req.cdb, 7) : req.cdb[4];
  req.scsi_length = param_length;
  if (req.cdb[1] & 0x01) return InvalidCdbField(1, 0);  // SP: nothing can be saved
  if (param_length == 0) return Good();
  const auto data = std::span<const uint8_t>(req.cmd.data_out)
                        .first(std::min<size_t>(req.cmd.data_out.size(), param_length));
  const size_t header = is10 ? 8 : 4;
  if (data.size() < header) return CheckCondition(sense::kParamListLengthError);
  const size_t descriptors_length = is10 ? GetBe16(data, 6) : data[3];
  const bool long_lba = is10 && (data[4] & 0x01);
  const size_t descriptor_size = long_lba ? 16 : 8;
  if (header + descriptors_length > data.size() || descriptors_length % descriptor_size) {
    return CheckCondition(sense::kParamListLengthError);
  }
  for (size_t off = header; off < header + descriptors_length; off += descriptor_size) {
    const size_t length_at = long_lba ? off + 12 : off + 5;
    const uint32_t block_length = static_cast<uint32_t>(GetBe(data, length_at, long_lba ? 4 : 3));
    if (block_length != req.cfg.block_size)
      return InvalidParamField(static_cast<uint16_t>(length_at));
  }
  std::optional<bool> write_cache;
  for (size_t off = header + descriptors_length; off < data.size();) {
    if (off + 2 > data.size()) return CheckCondition(sense::kParamListLengthError);
    if (data[off] & 0x40) return InvalidParamField(static_cast<uint16_t>(off), 6);  // subpages
    const uint8_t code = data[off] & 0x3F;
    const std::vector<uint8_t> current = CurrentPage(code, req.shared.state);
    const size_t length = size_t{data[off + 1]} + 2;
    if (current.empty()) return InvalidParamField(static_cast<uint16_t>(off), 5);
    if (off + length > data.size()) return CheckCondition(sense::kParamListLengthError);
    if (length != current.size()) return InvalidParamField(static_cast<uint16_t>(off + 1));
    const std::vector<uint8_t> mask = ChangeableMask(code, req.shared.state);
    for (size_t i = 2; i < length; ++i) {
      if ((data[off + i] ^ current[i]) & ~mask[i]) {
        return InvalidParamField(static_cast<uint16_t>(off + i));
      }
    }
    if (code == kPageCaching) write_cache = (data[off + kWceByte] & kWce) != 0;
    off += length;
  }
  if (!write_cache || *write_cache == req.shared.state.write_cache) return Good();
  // Turning the cache off: what it holds becomes durable first.
  if (!*write_cache) {
    if (IoStatus st = req.io.Flush(); st != IoStatus::kOk)
      return BackendFailure(st, IoKind::kWrite);
  }
  const bool wce = *write_cache;
  const std::string& self = req.nexus_id;
  const IoStatus st = UpdateSharedState(req.backend, &req.shared, [&](SharedState& s) {
    if (s.write_cache == wce) return false;
    s.write_cache = wce;
    // SPC-4 §7.5.1: the other I_T nexuses learn that a shared mode page changed.
    s.QueueUnitAttentionForAll(ua::kModeParametersChanged, self);
    return true;
  });
  if (st != IoStatus::kOk) return CheckCondition(sense::kInternalTargetFailure);
  spdlog::info("{}: write cache {} by {}", req.backend.LuName(), wce ? "enabled" : "disabled",
               self);
  return Good();
}

}  // namespace kelpie::scsi
