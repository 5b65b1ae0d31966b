// VDIs and locks: NEW_VDI (create, clone, snapshot), DEL_VDI, GET_VDI_INFO, READ_VDIS, LOCK_VDI,
// RELEASE_VDI, GET_CLUSTER_DEFAULT, and dog's lock list / unlock. Changes to the catalog and the
// locks are ordered cluster operations; the gateway that took the request then writes the inode
// objects.
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "proto/inode.h"
#include "proto/oid.h"
#include "proto/request_check.h"
#include "sheep/coherence.h"
#include "sheep/ec_gateway.h"
#include "sheep/gateway.h"
#include "sheep/ops.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

namespace res = proto::res;
using proto::Header;
using proto::Inode;

namespace {

uint64_t NowInodeTime() {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return (uint64_t(ns / 1000000000) << 32) | uint64_t(ns % 1000000000);
}

asio::awaitable<uint32_t> ReadInode(Sheep& s, uint32_t vid, bool with_table, Inode& out) {
  std::vector<uint8_t> b;
  const uint32_t len = uint32_t(with_table ? proto::kInodeRefreshSize : proto::kInodeHeaderSize);
  const uint32_t rc = co_await GatewayRead(s, proto::VidToInodeOid(vid), 0, len, b);
  if (rc != res::kSuccess) co_return rc;
  co_return proto::DecodeInode(b, out) ? res::kSuccess : res::kEio;
}

asio::awaitable<uint32_t> WriteNewInode(Sheep& s, const Inode& in) {
  const std::vector<uint8_t> b =
      in.data_vdi_id.empty() ? proto::EncodeInodeHeader(in) : proto::EncodeInode(in);
  co_return co_await GatewayCreate(s, proto::VidToInodeOid(in.vdi_id), proto::kInodeObjectSize, 0,
                                   b);
}

Reply VdiReply(Sheep& s, const Header& h, uint32_t rc, uint32_t vid) {
  Reply r = Reply::Error(h, rc);
  r.hdr.set_rsp_vdi_id(vid);
  s.WithState([&](const ClusterState& st) {
    const VdiEntry* e = st.catalog.Find(vid);
    r.hdr.set_rsp_vdi_copies(uint8_t(st.CopiesOf(vid)));
    r.hdr.set_rsp_block_size_shift(e ? e->block_size_shift : st.config.block_size_shift);
    return 0;
  });
  return r;
}

}  // namespace

asio::awaitable<Reply> HandleNewVdi(Sheep& s, Request& req, const ClientInfo&) {
  const Header& h = req.hdr;
  proto::VdiNamePayload n;
  if (!proto::ParseVdiNamePayload(req.hdr, req.data, n))
    co_return Reply::Error(h, res::kInvalidParms);
  const FormatConfig cfg = s.WithState([](const ClusterState& st) { return st.config; });
  const bool snapshot = h.snapid() != 0;
  const uint32_t base_vid = h.base_vdi_id();
  uint8_t bss = h.block_size_shift() != 0 ? h.block_size_shift() : cfg.block_size_shift;
  uint8_t copies = h.vdi_copies() != 0 ? h.vdi_copies() : cfg.copies;
  uint8_t copy_policy = h.vdi_copies() != 0 ? h.vdi_copy_policy() : cfg.copy_policy;
  uint64_t size = h.vdi_size();

  // A snapshot or clone starts from its base's inode (table included).
  Inode base;
  if (snapshot || base_vid != 0) {
    if (base_vid == 0) co_return Reply::Error(h, res::kNoBaseVdi);
    const uint32_t rc = co_await ReadInode(s, base_vid, true, base);
    if (rc != res::kSuccess)
      co_return Reply::Error(h, rc == res::kNoObj ? res::kNoBaseVdi : res::kBaseVdiRead);
    bss = base.block_size_shift;
    if (snapshot) {
      copies = base.nr_copies;
      copy_policy = base.copy_policy;
      size = base.vdi_size;
    } else if (size == 0) {
      size = base.vdi_size;
    }
  }
  if (bss < proto::kMinBlockSizeShift || bss > proto::kMaxBlockSizeShift ||
      size > proto::MaxVdiSize(bss) || copies == 0 || copies > proto::kMaxCopies ||
      (!snapshot && !ValidCopyPolicy(s, copies, copy_policy))) {
    co_return Reply::Error(h, res::kInvalidParms);
  }
  const uint64_t now = NowInodeTime();
  const std::string tag = snapshot ? (!n.tag.empty() ? n.tag : base.tag) : "";
  nlohmann::json op_req = {
      {"type", "new_vdi"},          {"name", n.name},          {"tag", tag},
      {"base_vid", base_vid},       {"snapshot", snapshot},    {"copies", copies},
      {"copy_policy", copy_policy}, {"block_size_shift", bss}, {"now", now}};
  const nlohmann::json result = co_await s.SubmitClusterOp(std::move(op_req));
  const uint32_t rc = result.value("result", uint32_t(res::kSystemError));
  if (rc != res::kSuccess) co_return Reply::Error(h, rc);
  const uint32_t vid = result.at("vid");
  if (snapshot) {
    // From now on the old working VDI is read-only on every sheep (after the barrier); re-read
    // its table so that an index update that landed since the first read is not lost to the
    // new working VDI.
    uint32_t settled = co_await ClusterBarrier(s, result.value("seq", uint64_t(0)));
    if (settled == res::kSuccess) settled = co_await ReadInode(s, base_vid, true, base);
    if (settled != res::kSuccess) {
      spdlog::error("NEW_VDI {}: snapshot of {:x} could not settle", n.name, base_vid);
      co_return Reply::Error(h, res::kVdiWrite);
    }
  }

  Inode in = (snapshot || base_vid != 0) ? base : Inode{};
  in.name = n.name;
  in.tag.clear();
  in.create_time = now;
  in.snap_ctime = 0;
  in.vm_clock_nsec = 0;
  in.vdi_size = size;
  in.copy_policy = copy_policy;
  in.nr_copies = copies;
  in.block_size_shift = bss;
  in.snap_id = result.at("snap_id");
  in.vdi_id = vid;
  in.parent_vdi_id = (snapshot || base_vid != 0) ? base_vid : 0;
  uint32_t wrc = co_await WriteNewInode(s, in);
  if (wrc == res::kSuccess && snapshot) {
    // The old working inode becomes the snapshot: its creation time of snapshot and its tag.
    base.snap_ctime = now;
    base.tag = tag;
    const std::vector<uint8_t> hdr = proto::EncodeInodeHeader(base);
    wrc = co_await GatewayWrite(s, proto::VidToInodeOid(base_vid), 0, hdr);
  }
  if (wrc != res::kSuccess) {
    spdlog::error("NEW_VDI {}: writing inode {:x} failed: {}", n.name, vid, proto::ResultText(wrc));
    co_return Reply::Error(h, res::kVdiWrite);
  }
  spdlog::info("VDI {} created: vid {:x} ({}{})", n.name, vid,
               snapshot ? "snapshot of " : (base_vid ? "clone of " : "new"),
               (snapshot || base_vid) ? fmt::format("{:x}", base_vid) : "");
  co_return VdiReply(s, h, res::kSuccess, vid);
}

asio::awaitable<Reply> HandleDelVdi(Sheep& s, Request& req, const ClientInfo&) {
  const Header& h = req.hdr;
  proto::VdiNamePayload n;
  if (!proto::ParseVdiNamePayload(req.hdr, req.data, n))
    co_return Reply::Error(h, res::kInvalidParms);
  nlohmann::json op_req = {
      {"type", "del_vdi"}, {"name", n.name}, {"tag", n.tag}, {"snapid", h.snapid()}};
  const nlohmann::json result = co_await s.SubmitClusterOp(std::move(op_req));
  const uint32_t rc = result.value("result", uint32_t(res::kSystemError));
  if (rc != res::kSuccess) co_return Reply::Error(h, rc);
  const uint32_t vid = result.at("vid");
  Inode in;
  const uint32_t read = co_await ReadInode(s, vid, true, in);
  if (read == res::kSuccess) {
    // Objects this VDI owns go, unless a live clone or snapshot descends from it and shares them.
    const bool shared =
        s.WithState([&](const ClusterState& st) { return st.catalog.HasLiveDescendant(vid); });
    if (!shared) {
      for (uint32_t idx = 0; idx < in.data_vdi_id.size(); ++idx) {
        if (in.data_vdi_id[idx] == vid) co_await GatewayRemove(s, proto::VidToDataOid(vid, idx));
      }
    }
    // A deleted VDI's inode keeps its vid taken but has no name (name[0] == 0).
    const std::vector<uint8_t> zero(proto::kMaxVdiLen, 0);
    co_await GatewayWrite(s, proto::VidToInodeOid(vid), 0, zero);
  }
  spdlog::info("VDI {} (vid {:x}) deleted", n.name, vid);
  co_return VdiReply(s, h, res::kSuccess, vid);
}

asio::awaitable<Reply> HandleGetVdiInfo(Sheep& s, Request& req, const ClientInfo&) {
  const Header& h = req.hdr;
  proto::VdiNamePayload n;
  if (!proto::ParseVdiNamePayload(req.hdr, req.data, n))
    co_return Reply::Error(h, res::kInvalidParms);
  uint32_t vid = 0;
  const uint32_t rc = s.WithState(
      [&](const ClusterState& st) { return st.catalog.Lookup(n.name, n.tag, h.snapid(), &vid); });
  co_return VdiReply(s, h, rc, vid);
}

asio::awaitable<Reply> HandleReadVdis(Sheep& s, Request& req, const ClientInfo&) {
  Reply r = Reply::Ok(req.hdr);
  r.data = s.WithState([](const ClusterState& st) { return st.catalog.Bitmap(); });
  if (req.hdr.data_length < r.data.size()) co_return Reply::Error(req.hdr, res::kInvalidParms);
  r.hdr.data_length = uint32_t(r.data.size());
  co_return r;
}

asio::awaitable<Reply> HandleLockVdi(Sheep& s, Request& req, const ClientInfo& c) {
  const Header& h = req.hdr;
  proto::VdiNamePayload n;
  if (!proto::ParseVdiNamePayload(req.hdr, req.data, n))
    co_return Reply::Error(h, res::kInvalidParms);
  if (h.lock_type() != proto::kLockNormal && h.lock_type() != proto::kLockShared) {
    co_return Reply::Error(h, res::kInvalidParms);
  }
  uint32_t vid = 0;
  bool locking = true;
  const uint32_t rc = s.WithState([&](const ClusterState& st) {
    locking = st.config.lock;
    return st.catalog.Lookup(n.name, n.tag, h.snapid(), &vid);
  });
  if (rc != res::kSuccess || !locking) co_return VdiReply(s, h, rc, vid);
  nlohmann::json op_req = {
      {"type", "lock"}, {"vid", vid}, {"lock_type", h.lock_type()}, {"participant", c.participant}};
  const nlohmann::json result = co_await s.SubmitClusterOp(std::move(op_req));
  co_return VdiReply(s, h, result.value("result", uint32_t(res::kSystemError)), vid);
}

asio::awaitable<Reply> HandleReleaseVdi(Sheep& s, Request& req, const ClientInfo& c) {
  const Header& h = req.hdr;
  const uint32_t vid = h.base_vdi_id();
  nlohmann::json op_req = {{"type", "release"}, {"vid", vid}, {"participant", c.participant}};
  const nlohmann::json result = co_await s.SubmitClusterOp(std::move(op_req));
  co_return VdiReply(s, h, result.value("result", uint32_t(res::kSystemError)), vid);
}

asio::awaitable<Reply> HandleGetClusterDefault(Sheep& s, Request& req, const ClientInfo&) {
  Reply r = Reply::Ok(req.hdr);
  s.WithState([&](const ClusterState& st) {
    r.hdr.Set<uint8_t>(20, st.config.copies);
    r.hdr.Set<uint8_t>(21, st.config.copy_policy);
    r.hdr.Set<uint8_t>(22, st.config.block_size_shift);
    return 0;
  });
  co_return r;
}

asio::awaitable<Reply> HandleLockList(Sheep& s, Request& req, const ClientInfo&) {
  const std::string body = s.WithState([](const ClusterState& st) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& [vid, l] : st.locks.locks()) {
      const VdiEntry* e = st.catalog.Find(vid);
      nlohmann::json ps = nlohmann::json::array();
      for (const auto& [p, state] : l.participants) {
        ps.push_back({{"client", p}, {"state", ParticipantStateName(state)}});
      }
      arr.push_back({{"vid", vid},
                     {"name", e ? e->name : ""},
                     {"type", l.type == proto::kLockShared ? "shared" : "normal"},
                     {"participants", ps}});
    }
    return arr.dump();
  });
  co_return JsonReply(req.hdr, body);
}

asio::awaitable<Reply> HandleLockUnlock(Sheep& s, Request& req, const ClientInfo&) {
  const Header& h = req.hdr;
  proto::VdiNamePayload n;
  if (!proto::ParseVdiNamePayload(req.hdr, req.data, n))
    co_return Reply::Error(h, res::kInvalidParms);
  uint32_t vid = 0;
  const uint32_t rc = s.WithState(
      [&](const ClusterState& st) { return st.catalog.Lookup(n.name, n.tag, h.snapid(), &vid); });
  if (rc != res::kSuccess) co_return Reply::Error(h, rc);
  nlohmann::json op_req = {{"type", "unlock"}, {"vid", vid}};
  const nlohmann::json result = co_await s.SubmitClusterOp(std::move(op_req));
  co_return VdiReply(s, h, result.value("result", uint32_t(res::kSystemError)), vid);
}

}  // namespace kelpie::sheep
