// Cluster administration for dog: format, shutdown, cluster/node status, recovery progress,
// object placement and the per-object consistency check (dog vdi check).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "proto/crc32c.h"
#include "proto/ec.h"
#include "proto/oid.h"
#include "sheep/ec_gateway.h"
#include "sheep/gateway.h"
#include "sheep/ops.h"
#include "sheep/peer_ops.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

namespace res = proto::res;
using nlohmann::json;
using proto::Header;

namespace {

json ParseBody(const Request& req) {
  if (req.data.empty()) return json::object();
  return json::parse(req.data.begin(), req.data.end());
}

}  // namespace

asio::awaitable<Reply> HandleMakeFs(Sheep& s, Request& req, const ClientInfo&) {
  json body;
  try {
    body = ParseBody(req);
  } catch (const std::exception&) {
    co_return Reply::Error(req.hdr, res::kInvalidParms);
  }
  const int copies = body.value("copies", int(proto::kDefaultCopies));
  const int bss = body.value("block_size_shift", int(proto::kDefaultBlockSizeShift));
  const int policy = body.value("copy_policy", 0);
  if (copies < 1 || copies > int(proto::kMaxCopies) || bss < proto::kMinBlockSizeShift ||
      bss > proto::kMaxBlockSizeShift || !ValidCopyPolicy(s, copies, policy)) {
    co_return Reply::Error(req.hdr, res::kInvalidParms);
  }
  nlohmann::json op_req = {{"type", "format"},        {"ctime", uint64_t(::time(nullptr))},
                           {"copies", copies},        {"copy_policy", policy},
                           {"block_size_shift", bss}, {"lock", body.value("lock", true)}};
  const json result = co_await s.SubmitClusterOp(std::move(op_req));
  co_return Reply::Error(req.hdr, result.value("result", uint32_t(res::kSystemError)));
}

asio::awaitable<Reply> HandleShutdown(Sheep& s, Request& req, const ClientInfo&) {
  nlohmann::json op_req = {{"type", "shutdown"}};
  const json result = co_await s.SubmitClusterOp(std::move(op_req));
  co_return Reply::Error(req.hdr, result.value("result", uint32_t(res::kSystemError)));
}

asio::awaitable<Reply> HandleStatCluster(Sheep& s, Request& req, const ClientInfo&) {
  const std::string body = s.WithState([](const ClusterState& st) {
    json epochs = json::array();
    for (auto it = st.history.rbegin(); it != st.history.rend(); ++it) {
      json nodes = json::array();
      for (const auto& n : it->nodes) nodes.push_back(n.id());
      epochs.push_back({{"epoch", it->epoch}, {"time", it->time}, {"nodes", nodes}});
    }
    const char* status = st.shutting_down      ? "shutting down"
                         : st.config.formatted ? "running"
                                               : "waiting for format";
    return json{{"status", status},
                {"ctime", st.config.ctime},
                {"epoch", st.epoch},
                {"copies", st.config.copies},
                {"copy_policy", st.config.copy_policy},
                {"block_size_shift", st.config.block_size_shift},
                {"lock", st.config.lock},
                {"epochs", epochs}}
        .dump();
  });
  co_return JsonReply(req.hdr, body);
}

asio::awaitable<Reply> HandleGetNodeList(Sheep& s, Request& req, const ClientInfo&) {
  const View v = s.view();
  json nodes = json::array();
  for (const auto& n : v.ring->nodes()) nodes.push_back(NodeToJson(n));
  co_return JsonReply(req.hdr,
                      json{{"epoch", v.epoch}, {"local", s.self().id()}, {"nodes", nodes}}.dump());
}

asio::awaitable<Reply> HandleGetNodeInfo(Sheep& s, Request& req, const ClientInfo&) {
  const json body = {{"size", s.store().CapacityBytes()},
                     {"used", s.store().UsedBytes()},
                     {"objects", s.store().List().size()}};
  co_return JsonReply(req.hdr, body.dump());
}

asio::awaitable<Reply> HandleSetClientId(Sheep&, Request& req, const ClientInfo&) {
  const auto& d = req.data;
  const bool printable =
      std::all_of(d.begin(), d.end(), [](uint8_t b) { return b > 0x20 && b < 0x7f && b != '/'; });
  if (d.empty() || d.size() > 128 || !printable)
    co_return Reply::Error(req.hdr, res::kInvalidParms);
  co_return Reply::Ok(req.hdr);
}

asio::awaitable<Reply> HandleRecoveryStatus(Sheep& s, Request& req, const ClientInfo&) {
  co_return JsonReply(req.hdr, s.recovery().Status().dump());
}

asio::awaitable<Reply> HandleObjLocate(Sheep& s, Request& req, const ClientInfo&) {
  const uint64_t oid = req.hdr.oid();
  const View v = s.view();
  const size_t copies =
      s.WithState([&](const ClusterState& st) { return st.CopiesOf(proto::OidToVid(oid)); });
  json placement = json::array(), holders = json::array();
  for (const auto& n : v.ring->PlaceNodes(oid, copies)) placement.push_back(n.id());
  for (const auto& n : v.ring->nodes()) {
    Header h;
    h.opcode = proto::op::kPeerObjExists;
    h.set_oid(oid);
    h.Set<uint8_t>(35, peer_flag::kNoEpochCheck);
    const Reply r = co_await PeerCall(s, n, h, {});
    if (r.result() == res::kSuccess) holders.push_back(n.id());
  }
  co_return JsonReply(
      req.hdr,
      json{{"oid", oid}, {"copies", copies}, {"placement", placement}, {"holders", holders}}
          .dump());
}

asio::awaitable<Reply> HandleCheckObj(Sheep& s, Request& req, const ClientInfo&) {
  const uint64_t oid = req.hdr.oid();
  if (IsErasureCoded(s, oid)) {
    const json checked = co_await EcCheck(s, oid);
    co_return JsonReply(req.hdr, checked.dump());
  }
  const View v = s.view();
  const size_t copies =
      s.WithState([&](const ClusterState& st) { return st.CopiesOf(proto::OidToVid(oid)); });
  const auto nodes = v.ring->PlaceNodes(oid, copies);
  // Read every copy (each verified against its block checksums where it is stored); group the
  // good ones by content checksum. A copy failing its checksums counts as corrupt, not as a vote.
  std::vector<std::vector<uint8_t>> data(nodes.size());
  std::vector<int64_t> crc(nodes.size(), -1);
  std::vector<bool> corrupt(nodes.size(), false);
  std::map<uint32_t, size_t> votes;
  for (size_t i = 0; i < nodes.size(); ++i) {
    WholeCopy copy;
    const uint32_t rc = co_await PeerReadWhole(s, nodes[i], oid, false, copy);
    if (rc == res::kChecksumError) {
      corrupt[i] = true;
      spdlog::warn("check {:016x}: the copy on {} failed its checksums", oid, nodes[i].id());
    }
    if (rc != res::kSuccess) continue;
    data[i] = std::move(copy.data);
    crc[i] = proto::Crc32c(data[i]);
    ++votes[uint32_t(crc[i])];
  }
  json missing = json::array(), repaired = json::array();
  if (votes.empty()) {
    co_return JsonReply(req.hdr, json{{"oid", oid},
                                      {"copies", nodes.size()},
                                      {"ok", false},
                                      {"lost", true},
                                      {"missing", missing},
                                      {"repaired", repaired}}
                                     .dump());
  }
  // The content most copies agree on wins; on a tie, the first copy in placement order.
  int64_t good = -1;
  size_t best = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (crc[i] >= 0 && votes[uint32_t(crc[i])] > best) {
      best = votes[uint32_t(crc[i])];
      good = crc[i];
    }
  }
  size_t src = 0;
  while (crc[src] != good) ++src;
  const bool ok = votes.size() == 1 && std::find(crc.begin(), crc.end(), -1) == crc.end();
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (crc[i] == good) continue;
    const bool absent = crc[i] < 0 && !corrupt[i];
    (absent ? missing : repaired).push_back(nodes[i].id());
    const uint32_t rc = co_await PeerRewriteWhole(s, nodes[i], v.epoch, oid, data[src]);
    if (rc != res::kSuccess) {
      spdlog::error("check {:016x}: repairing the copy on {} failed: {}", oid, nodes[i].id(),
                    proto::ResultText(rc));
    } else {
      spdlog::warn("check {:016x}: copy on {} {} from {}", oid, nodes[i].id(),
                   absent       ? "was missing, restored"
                   : corrupt[i] ? "was corrupt, repaired"
                                : "differed, repaired",
                   nodes[src].id());
    }
  }
  co_return JsonReply(req.hdr, json{{"oid", oid},
                                    {"copies", nodes.size()},
                                    {"ok", ok},
                                    {"lost", false},
                                    {"missing", missing},
                                    {"repaired", repaired}}
                                   .dump());
}

}  // namespace kelpie::sheep
