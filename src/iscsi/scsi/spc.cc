// SPC-4 device identification and discovery: INQUIRY (standard data and VPD pages), REPORT LUNS,
// TEST UNIT READY, REQUEST SENSE, REPORT SUPPORTED OPERATION CODES, REPORT TARGET PORT GROUPS.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>

#include "iscsi/scsi/block_limits.h"
#include "iscsi/scsi/bytes.h"
#include "iscsi/scsi/handlers.h"
#include "iscsi/scsi/sense.h"

namespace kelpie::scsi {
namespace {

// Version descriptors (SPC-4 Table 144 / T10 list): SAM-5, SPC-4, SBC-3, iSCSI.
constexpr uint16_t kVersionDescriptors[] = {0x00A0, 0x0460, 0x04C0, 0x0960};
constexpr uint8_t kVpdPages[] = {0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2};
// Kelpie has no IEEE company id; the NAA 6 designator carries 0 there and is unique through
// the LU identity bits that follow.
constexpr uint64_t kNaaCompanyId = 0x000000;
constexpr uint8_t kProtocolIscsi = 0x5;
constexpr uint8_t kCodeSetBinary = 0x1, kCodeSetUtf8 = 0x3;
constexpr uint8_t kAssocLu = 0x00, kAssocTargetPort = 0x10, kAssocTargetDevice = 0x20;
constexpr uint8_t kPiv = 0x80;
constexpr uint8_t kDesigNaa = 0x3, kDesigRelativePort = 0x4, kDesigPortGroup = 0x5,
                  kDesigScsiName = 0x8;

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::vector<uint8_t> StandardInquiry(const Request& req) {
  std::vector<uint8_t> d(96, 0);
  d[0] = req.cmd.lun == 0 ? 0x00 : 0x7F;  // direct access block device / no LU at this LUN
  d[2] = 0x06;                            // SPC-4
  d[3] = 0x12;                            // HISUP, response data format 2
  d[4] = static_cast<uint8_t>(d.size() - 5);
  d[5] = 0x10;  // TPGS = 01b: implicit ALUA
  d[6] = 0x10;  // MULTIP
  d[7] = 0x02;  // CMDQUE
  PutAsciiPadded(d, 8, 8, req.cfg.vendor);
  PutAsciiPadded(d, 16, 16, req.cfg.product);
  PutAsciiPadded(d, 32, 4, req.cfg.revision);
  size_t off = 58;
  for (uint16_t v : kVersionDescriptors) {
    PutBe16(d, off, v);
    off += 2;
  }
  return d;
}

// A VPD page: 4-byte header + payload.
std::vector<uint8_t> VpdPage(uint8_t page, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> d{0x00, page, 0, 0};
  PutBe16(d, 2, payload.size());
  d.insert(d.end(), payload.begin(), payload.end());
  return d;
}

void AppendDesignator(std::vector<uint8_t>& out, uint8_t byte0, uint8_t byte1,
                      const std::vector<uint8_t>& value) {
  out.push_back(byte0);
  out.push_back(byte1);
  out.push_back(0);
  out.push_back(static_cast<uint8_t>(value.size()));
  out.insert(out.end(), value.begin(), value.end());
}

std::vector<uint8_t> DeviceIdentification(Request& req) {
  std::vector<uint8_t> p;
  // LU: NAA 6 (IEEE registered extended), identical on every target process of the LU.
  const uint64_t identity = req.backend.LuIdentity();
  const uint64_t vendor_id = Fnv1a(req.backend.LuName()) & 0xFFFFFFFFFull;  // 36 bits
  std::vector<uint8_t> naa(16);
  PutBe64(naa, 0, (uint64_t{6} << 60) | (kNaaCompanyId << 36) | vendor_id);
  PutBe64(naa, 8, identity);
  AppendDesignator(p, kCodeSetBinary, kAssocLu | kDesigNaa, naa);
  // Target port (this process): relative target port and target port group.
  std::vector<uint8_t> port(4, 0);
  PutBe16(port, 2, req.cfg.rel_port);
  AppendDesignator(p, (kProtocolIscsi << 4) | kCodeSetBinary,
                   kPiv | kAssocTargetPort | kDesigRelativePort, port);
  std::vector<uint8_t> group(4, 0);
  PutBe16(group, 2, req.cfg.tpg);
  AppendDesignator(p, (kProtocolIscsi << 4) | kCodeSetBinary,
                   kPiv | kAssocTargetPort | kDesigPortGroup, group);
  // Target device: its iSCSI name, NUL-terminated and padded to a multiple of 4 (≤ 252 bytes).
  if (!req.cfg.target_name.empty()) {
    std::string name = req.cfg.target_name.substr(0, 251);
    std::vector<uint8_t> value(name.begin(), name.end());
    value.resize((value.size() + 1 + 3) / 4 * 4, 0);
    AppendDesignator(p, (kProtocolIscsi << 4) | kCodeSetUtf8,
                     kPiv | kAssocTargetDevice | kDesigScsiName, value);
  }
  return VpdPage(0x83, p);
}

std::vector<uint8_t> BlockLimitsPage(const Request& req) {
  const BlockLimits limits{req.cfg.block_size};
  std::vector<uint8_t> d(64, 0);
  d[1] = 0xB0;
  PutBe16(d, 2, 0x3C);
  d[4] = 0x01;  // WSNZ: WRITE SAME with 0 blocks is rejected
  d[5] = BlockLimits::kMaxCompareAndWriteBlocks;
  PutBe32(d, 8, limits.MaxTransferBlocks());
  PutBe32(d, 12, limits.OptimalTransferBlocks());
  PutBe32(d, 20, limits.MaxUnmapBlocks());
  PutBe32(d, 24, BlockLimits::kMaxUnmapDescriptors);
  PutBe32(d, 28, limits.OptimalUnmapGranularity());
  PutBe32(d, 32, 0x80000000u);  // UGAVALID, unmap granularity alignment 0
  PutBe64(d, 36, limits.MaxWriteSameBlocks());
  return d;
}

std::vector<uint8_t> BlockCharacteristicsPage() {
  std::vector<uint8_t> d(64, 0);
  d[1] = 0xB1;
  PutBe16(d, 2, 0x3C);
  PutBe16(d, 4, 0x0001);  // MEDIUM ROTATION RATE: non-rotating
  return d;
}

std::vector<uint8_t> LogicalBlockProvisioningPage() {
  std::vector<uint8_t> d(8, 0);
  d[1] = 0xB2;
  PutBe16(d, 2, 4);
  d[5] = 0x80 | 0x40 | 0x20 | 0x04;  // LBPU, LBPWS, LBPWS10, LBPRZ
  d[6] = 0x02;                       // thin provisioned
  return d;
}

std::optional<std::vector<uint8_t>> VitalProductData(Request& req, uint8_t page) {
  switch (page) {
    case 0x00:
      return VpdPage(0x00, std::vector<uint8_t>(std::begin(kVpdPages), std::end(kVpdPages)));
    case 0x80: {
      std::string serial = fmt::format("{:016x}", req.backend.LuIdentity());
      return VpdPage(0x80, std::vector<uint8_t>(serial.begin(), serial.end()));
    }
    case 0x83:
      return DeviceIdentification(req);
    case 0xB0:
      return BlockLimitsPage(req);
    case 0xB1:
      return BlockCharacteristicsPage();
    case 0xB2:
      return LogicalBlockProvisioningPage();
    default:
      return std::nullopt;
  }
}

void AppendTimeoutsDescriptor(std::vector<uint8_t>& out, const CommandInfo& c) {
  const size_t off = out.size();
  out.resize(off + 12, 0);
  PutBe16(out, off, 0x0A);
  PutBe32(out, off + 8, c.recommended_timeout_s);
}

}  // namespace

ScsiResult HandleInquiry(Request& req) {
  const bool evpd = req.cdb[1] & 0x01;
  const uint8_t page = req.cdb[2];
  const uint16_t alloc = GetBe16(req.cdb, 3);
  if (!evpd) {
    if (page != 0) return InvalidCdbField(2);
    return DataIn(StandardInquiry(req), alloc);
  }
  auto data = VitalProductData(req, page);
  if (!data) return InvalidCdbField(2);
  if (req.cmd.lun != 0) (*data)[0] = 0x7F;
  return DataIn(std::move(*data), alloc);
}

ScsiResult HandleReportLuns(Request& req) {
  const uint8_t select = req.cdb[2];
  const uint32_t alloc = GetBe32(req.cdb, 6);
  std::vector<uint8_t> d(8, 0);
  switch (select) {
    case 0x00:          // all logical units except well-known ones
    case 0x02:          // all
      d.resize(16, 0);  // LUN 0
      break;
    case 0x01:  // well-known LUs only: none
    case 0x10:  // administrative LUs: none
      break;
    default:
      return InvalidCdbField(2);
  }
  PutBe32(d, 0, d.size() - 8);
  return DataIn(std::move(d), alloc);
}

ScsiResult HandleTestUnitReady(Request&) { return Good(); }

ScsiResult HandleRequestSense(Request& req) {
  const uint8_t alloc = req.cdb[4];
  if (req.cmd.lun != 0) return DataIn(BuildFixedSense(sense::kLunNotSupported), alloc);
  // A pending unit attention is reported (and cleared) as parameter data.
  std::optional<SenseCode> pending;
  if (req.shared.state.HasUnitAttention(req.nexus_id)) {
    IoStatus st = UpdateSharedState(req.backend, &req.shared, [&](SharedState& s) {
      pending = s.PopUnitAttention(req.nexus_id);
      return pending.has_value();
    });
    if (st != IoStatus::kOk) return CheckCondition(sense::kInternalTargetFailure);
  }
  return DataIn(BuildFixedSense(pending.value_or(sense::kNoAdditionalSense)), alloc);
}

ScsiResult HandleReportSupportedOpcodes(Request& req) {
  const bool rctd = req.cdb[2] & 0x80;
  const uint8_t options = req.cdb[2] & 0x07;
  const uint8_t op = req.cdb[3];
  const uint16_t sa = GetBe16(req.cdb, 4);
  const uint32_t alloc = GetBe32(req.cdb, 6);

  if (options == 0) {  // every supported command
    std::vector<uint8_t> d(4, 0);
    for (const CommandInfo& c : AllCommands()) {
      const size_t off = d.size();
      d.resize(off + 8, 0);
      d[off] = c.opcode;
      PutBe16(d, off + 2, c.service_action.value_or(0));
      d[off + 5] = (rctd ? 0x02 : 0x00) | (c.service_action ? 0x01 : 0x00);  // CTDP, SERVACTV
      PutBe16(d, off + 6, c.cdb_length);
      if (rctd) AppendTimeoutsDescriptor(d, c);
    }
    PutBe32(d, 0, d.size() - 4);
    return DataIn(std::move(d), alloc);
  }

  // One command: 1 = by opcode (must have no service actions), 2 = opcode + service action,
  // 3 = service action if the opcode has them.
  const bool has_sa = HasServiceActions(op);
  if (options > 3 || (options == 1 && has_sa) || (options == 2 && !has_sa)) {
    return InvalidCdbField(2, 2);
  }
  const CommandInfo* c = nullptr;
  if (!has_sa) {
    c = FindCommand(op, 0);
  } else if (sa <= 0x1F) {
    c = FindCommand(op, static_cast<uint8_t>(sa));
  }
  std::vector<uint8_t> d(4, 0);
  if (!c) {
    d[1] = 0x01;  // SUPPORT: not supported
    return DataIn(std::move(d), alloc);
  }
  d[1] = (rctd ? 0x80 : 0x00) | 0x03;  // CTDP, SUPPORT: supported as in the standard
  PutBe16(d, 2, c->cdb_length);
  d.insert(d.end(), c->usage.begin(), c->usage.begin() + c->cdb_length);
  if (rctd) AppendTimeoutsDescriptor(d, *c);
  return DataIn(std::move(d), alloc);
}

ScsiResult HandleReportTargetPortGroups(Request& req) {
  const uint8_t format = req.cdb[1] >> 5;
  const uint32_t alloc = GetBe32(req.cdb, 6);
  if (format > 1) return InvalidCdbField(1, 7);

  std::map<uint16_t, std::vector<uint16_t>> groups;  // tpg → relative port ids
  for (const TargetPort& p : req.shared.state.ports) groups[p.tpg].push_back(p.rel_port);
  auto& own = groups[req.cfg.tpg];
  if (std::find(own.begin(), own.end(), req.cfg.rel_port) == own.end()) {
    own.push_back(req.cfg.rel_port);
  }

  std::vector<uint8_t> d(format == 1 ? 8 : 4, 0);
  if (format == 1) d[4] = 0x10;  // extended header format; implicit transition time 0
  for (const auto& [tpg, ports] : groups) {
    const size_t off = d.size();
    d.resize(off + 8, 0);
    d[off] = 0x00;      // asymmetric access state: active/optimized
    d[off + 1] = 0x01;  // AO_SUP
    PutBe16(d, off + 2, tpg);
    d[off + 7] = static_cast<uint8_t>(std::min<size_t>(ports.size(), 255));
    for (size_t i = 0; i < ports.size() && i < 255; ++i) AppendBe(d, 4, ports[i]);
  }
  PutBe32(d, 0, d.size() - 4);
  return DataIn(std::move(d), alloc);
}

}  // namespace kelpie::scsi
