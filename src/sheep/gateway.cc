#include "sheep/gateway.h"

#include <spdlog/spdlog.h>

#include <asio/experimental/concurrent_channel.hpp>

#include "proto/inode.h"
#include "proto/oid.h"
#include "sheep/asio_util.h"
#include "sheep/ec_gateway.h"
#include "sheep/peer_ops.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

using asio::use_awaitable;
using proto::Header;
namespace res = proto::res;

namespace {

constexpr auto kRetryFor = std::chrono::seconds(60);
constexpr auto kSerializedWait = std::chrono::seconds(30);

asio::awaitable<void> Sleep(Sheep& s, std::chrono::milliseconds d) {
  asio::steady_timer t(s.io(), d);
  co_await t.async_wait(use_awaitable);
}

// Waits out an epoch disagreement; returns false when the caller should give up.
// Every co_await here and in the retry loops below is a statement of its own, its result kept in
// a local. Written as `if (!co_await f()) co_return x;`, GCC 12.2's code resumed a freed frame of
// this coroutine (SIGILL in its resume switch): a sheep died whenever a killed peer rejoined under
// a write load (tests/fault/test_sheep_kill.py, every run); written like this it does not.
asio::awaitable<bool> AwaitEpochChange(Sheep& s, const View& v, uint32_t rc,
                                       std::chrono::steady_clock::time_point deadline) {
  if (std::chrono::steady_clock::now() > deadline) co_return false;
  bool go_on = true;
  if (rc == res::kOldNodeVer) {
    co_await s.WaitForEpoch(v.epoch + 1, std::chrono::seconds(5));
  } else if (rc == res::kNetwork) {
    // A copy is unreachable: only a membership change (the node leaving) makes progress.
    go_on = co_await s.WaitForEpoch(v.epoch + 1, std::chrono::seconds(10));
  } else {
    co_await Sleep(s, std::chrono::milliseconds(20));
  }
  co_return go_on;
}

bool IsRetryable(uint32_t rc) {
  return rc == res::kOldNodeVer || rc == res::kNewNodeVer || rc == res::kNetwork;
}

// Runs a mutation on every copy, retrying across epoch changes.
asio::awaitable<uint32_t> FanOut(Sheep& s, uint64_t oid, Header hdr,
                                 std::span<const uint8_t> data) {
  co_return co_await RetryAcrossEpochs(
      s, oid, hdr.opcode, [&](const View& v) -> asio::awaitable<uint32_t> {
        const auto nodes = PlacementOf(s, v, oid);
        hdr.epoch = v.epoch;
        std::vector<Reply> replies =
            co_await CallEach(s, nodes, std::vector<Header>(nodes.size(), hdr),
                              std::vector<std::span<const uint8_t>>(nodes.size(), data));
        // A copy whose old bytes failed their checksums (a partial write must not mix new bytes
        // into a rotten block) is rewritten whole from a copy that took the write.
        std::vector<cluster::NodeInfo> rotten;
        const cluster::NodeInfo* good = nullptr;
        for (size_t i = 0; i < nodes.size(); ++i) {
          if (replies[i].result() == res::kChecksumError) rotten.push_back(nodes[i]);
          if (replies[i].result() == res::kSuccess) good = &nodes[i];
        }
        if (!rotten.empty()) {
          uint32_t repair = res::kEio;
          if (good != nullptr) repair = co_await RepairCopies(s, v.epoch, oid, *good, rotten);
          for (Reply& r : replies) {
            if (r.result() == res::kChecksumError) r.hdr.set_result(repair);
          }
        }
        co_return WorstResult(replies);
      });
}

}  // namespace

std::vector<cluster::NodeInfo> PlacementOf(Sheep& s, const View& v, uint64_t oid) {
  const size_t copies =
      s.WithState([&](const ClusterState& st) { return st.CopiesOf(proto::OidToVid(oid)); });
  return v.ring->PlaceNodes(oid, copies);
}

asio::awaitable<std::vector<Reply>> CallEach(Sheep& s, const std::vector<cluster::NodeInfo>& nodes,
                                             std::vector<Header> hdrs,
                                             std::vector<std::span<const uint8_t>> data) {
  using Done = asio::experimental::concurrent_channel<void(asio::error_code, size_t, Reply)>;
  auto done = std::make_shared<Done>(s.io(), nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    asio::co_spawn(
        s.io(),
        [&s, node = nodes[i], hdr = hdrs[i], d = data[i], done, i]() -> asio::awaitable<void> {
          Reply r = co_await PeerCall(s, node, hdr, d);
          done->try_send(asio::error_code{}, i, std::move(r));
        },
        asio::detached);
  }
  std::vector<Reply> out(nodes.size());
  for (size_t n = 0; n < nodes.size(); ++n) {
    auto [ec, i, r] = co_await done->async_receive(kTuple);
    if (ec) break;
    out[i] = std::move(r);
  }
  co_return out;
}

uint32_t WorstResult(const std::vector<Reply>& replies) {
  uint32_t retry = res::kSuccess, error = res::kSuccess;
  for (const Reply& r : replies) {
    if (r.result() == res::kSuccess) continue;
    if (IsRetryable(r.result())) {
      retry = retry == res::kSuccess ? r.result() : retry;
    } else if (error == res::kSuccess) {
      error = r.result();
    }
  }
  return retry != res::kSuccess ? retry : error;
}

asio::awaitable<uint32_t> RetryAcrossEpochs(
    Sheep& s, uint64_t oid, uint8_t opcode,
    std::function<asio::awaitable<uint32_t>(const View&)> attempt) {
  const auto deadline = std::chrono::steady_clock::now() + kRetryFor;
  for (;;) {
    const View v = s.view();
    if (!v.serving) {
      const bool serving = co_await s.WaitServing();
      if (!serving) co_return res::kHalt;
      continue;
    }
    if (!v.formatted) co_return res::kWaitForFormat;
    if (v.ring->nodes().empty()) co_return res::kHalt;
    const uint32_t rc = co_await attempt(v);
    if (!IsRetryable(rc)) co_return rc;
    const bool go_on = co_await AwaitEpochChange(s, v, rc, deadline);
    if (!go_on) {
      spdlog::error("gateway: opcode {:#x} on {:016x} gave up at epoch {}: {}", opcode, oid,
                    v.epoch, proto::ResultText(rc));
      co_return res::kEio;
    }
  }
}

asio::awaitable<uint32_t> Serialized(Sheep& s, uint64_t oid,
                                     std::function<asio::awaitable<uint32_t>()> fn) {
  const auto deadline = std::chrono::steady_clock::now() + kSerializedWait;
  asio::steady_timer pause(s.io());
  while (!s.TryBusy(oid)) {
    if (std::chrono::steady_clock::now() > deadline) {
      spdlog::error("serialized request on {:016x}: object busy for {}s", oid,
                    kSerializedWait.count());
      co_return res::kSystemError;
    }
    pause.expires_after(std::chrono::microseconds(200));
    co_await pause.async_wait(asio::use_awaitable);
  }
  struct Release {
    Sheep& s;
    uint64_t oid;
    ~Release() { s.Unbusy(oid); }
  } release{s, oid};
  co_return co_await fn();
}

asio::awaitable<Reply> ForwardToFirstHolder(Sheep& s, Header h, std::span<const uint8_t> data) {
  const uint64_t oid = h.oid();
  Reply r = Reply::Error(h, res::kSystemError);
  h.Set<uint8_t>(35, peer_flag::kNoEpochCheck);
  for (int attempt = 0; attempt < 50; ++attempt) {
    const auto nodes = PlacementOf(s, s.view(), oid);
    if (nodes.empty()) co_return Reply::Error(h, res::kSystemError);
    r = co_await PeerCall(s, nodes.front(), h, data);
    if (r.result() != res::kNetwork) break;
    co_await Sleep(s, std::chrono::milliseconds(100));
  }
  co_return r;
}

uint64_t ObjectSize(Sheep& s, uint64_t oid) {
  if (proto::IsInodeOid(oid)) return proto::kInodeObjectSize;
  return s.WithState([&](const ClusterState& st) { return st.ObjectSizeOf(proto::OidToVid(oid)); });
}

asio::awaitable<uint32_t> RepairCopies(Sheep& s, uint32_t epoch, uint64_t oid,
                                       const cluster::NodeInfo& good,
                                       const std::vector<cluster::NodeInfo>& bad) {
  WholeCopy whole;
  uint32_t rc = co_await PeerReadWhole(s, good, oid, false, whole);
  if (rc != res::kSuccess) {
    spdlog::error("repair {:016x}: cannot read the good copy on {}: {}", oid, good.id(),
                  proto::ResultText(rc));
    co_return rc;
  }
  for (const auto& node : bad) {
    const uint32_t one = co_await PeerRewriteWhole(s, node, epoch, oid, whole.data);
    if (one == res::kSuccess) {
      spdlog::warn("repair {:016x}: rewrote the bad copy on {} from the copy on {}", oid, node.id(),
                   good.id());
    } else {
      spdlog::error("repair {:016x}: rewriting the copy on {} failed: {}", oid, node.id(),
                    proto::ResultText(one));
      rc = one;
    }
  }
  co_return rc;
}

asio::awaitable<uint32_t> GatewayRead(Sheep& s, uint64_t oid, uint64_t offset, uint32_t len,
                                      std::vector<uint8_t>& out) {
  if (IsErasureCoded(s, oid)) co_return co_await EcRead(s, oid, offset, len, out);
  Header hdr;
  hdr.opcode = proto::op::kPeerRead;
  hdr.set_oid(oid);
  hdr.set_offset(uint32_t(offset));
  hdr.data_length = len;
  co_return co_await RetryAcrossEpochs(s, oid, hdr.opcode,
                                       [&](const View& v) -> asio::awaitable<uint32_t> {
                                         auto nodes = PlacementOf(s, v, oid);
                                         // Prefer the local copy: no network hop.
                                         for (size_t i = 1; i < nodes.size(); ++i) {
                                           if (nodes[i] == s.self()) std::swap(nodes[0], nodes[i]);
                                         }
                                         hdr.epoch = v.epoch;
                                         // Every copy of the current placement is equally current:
                                         // the first that answers wins. A copy that says "no such
                                         // object" is authoritative (writes reach every copy); an
                                         // unreachable one is not, so only unreachable copies make
                                         // the read wait for a new epoch.
                                         // A copy that fails its checksums is skipped, and
                                         // rewritten from the one that answers.
                                         uint32_t retry = res::kSuccess, error = res::kSuccess;
                                         bool no_obj = false;
                                         std::vector<cluster::NodeInfo> rotten;
                                         for (const auto& node : nodes) {
                                           Reply r = co_await PeerCall(s, node, hdr, {});
                                           const uint32_t rc = r.result();
                                           if (rc == res::kSuccess) {
                                             out = std::move(r.data);
                                             out.resize(len);
                                             if (!rotten.empty()) {
                                               co_await RepairCopies(s, v.epoch, oid, node, rotten);
                                             }
                                             co_return res::kSuccess;
                                           }
                                           if (rc == res::kChecksumError) {
                                             spdlog::warn(
                                                 "gateway: read of {:016x}: the copy on {} failed "
                                                 "its checksums, trying another copy",
                                                 oid, node.id());
                                             rotten.push_back(node);
                                             error = res::kEio;  // if no copy is good
                                             continue;
                                           }
                                           if (rc == res::kOldNodeVer || rc == res::kNewNodeVer)
                                             co_return rc;
                                           if (rc == res::kNoObj)
                                             no_obj = true;
                                           else if (rc == res::kNetwork)
                                             retry = rc;
                                           else
                                             error = rc;
                                         }
                                         if (no_obj) co_return res::kNoObj;
                                         if (error != res::kSuccess) co_return error;
                                         co_return retry;
                                       });
}

asio::awaitable<uint32_t> GatewayWrite(Sheep& s, uint64_t oid, uint64_t offset,
                                       std::span<const uint8_t> data, bool write_back) {
  if (IsErasureCoded(s, oid)) co_return co_await EcWrite(s, oid, offset, data, EcMode::kWrite);
  Header hdr;
  hdr.opcode = proto::op::kPeerWrite;
  hdr.flags = proto::flag::kCmdWrite | (write_back ? proto::flag::kWriteBack : 0);
  hdr.set_oid(oid);
  hdr.set_offset(uint32_t(offset));
  co_return co_await FanOut(s, oid, hdr, data);
}

asio::awaitable<uint32_t> GatewayCreate(Sheep& s, uint64_t oid, uint64_t obj_size, uint64_t offset,
                                        std::span<const uint8_t> data,
                                        const ClientRange* keep_existing) {
  if (IsErasureCoded(s, oid)) {
    co_return co_await EcWrite(s, oid, offset, data, EcMode::kCreate, keep_existing);
  }
  Header hdr;
  hdr.opcode = proto::op::kPeerCreateWrite;
  hdr.flags = proto::flag::kCmdWrite;
  hdr.set_oid(oid);
  hdr.set_cow_oid(obj_size);
  hdr.set_offset(uint32_t(offset));
  if (keep_existing != nullptr) {
    hdr.Set<uint8_t>(35, peer_flag::kKeepExisting);
    hdr.Set<uint32_t>(peer_flag::kKeepOffsetAt, keep_existing->offset);
    hdr.Set<uint32_t>(peer_flag::kKeepLengthAt, keep_existing->length);
  }
  co_return co_await FanOut(s, oid, hdr, data);
}

asio::awaitable<uint32_t> GatewayFlush(Sheep& s, uint32_t vid) {
  const uint64_t inode_oid = proto::VidToInodeOid(vid);
  // The VDI and its ancestors: a snapshot taken since a write-back write turned the written
  // VDI into the working VDI's parent, and the client now names the new one.
  std::vector<uint8_t> vids;
  s.WithState([&](const ClusterState& st) {
    for (uint32_t v = vid; v != 0 && vids.size() < 4 * 4096;) {
      vids.resize(vids.size() + 4);
      proto::StoreLE<uint32_t>(&vids[vids.size() - 4], v);
      const VdiEntry* e = st.catalog.Find(v);
      v = e != nullptr ? e->parent_vid : 0;
    }
  });
  co_return co_await RetryAcrossEpochs(
      s, inode_oid, proto::op::kPeerFlush, [&](const View& v) -> asio::awaitable<uint32_t> {
        // Any node may hold copies of the VDI's objects. A node that left is not asked: its
        // copies are rebuilt elsewhere by recovery, which syncs what it writes.
        const std::vector<cluster::NodeInfo> nodes = v.ring->nodes();
        Header hdr;
        hdr.opcode = proto::op::kPeerFlush;
        hdr.epoch = v.epoch;
        hdr.set_oid(inode_oid);
        hdr.flags = proto::flag::kCmdWrite;
        hdr.data_length = uint32_t(vids.size());
        std::vector<Reply> replies = co_await CallEach(
            s, nodes, std::vector<Header>(nodes.size(), hdr),
            std::vector<std::span<const uint8_t>>(nodes.size(), std::span<const uint8_t>(vids)));
        co_return WorstResult(replies);
      });
}

asio::awaitable<uint32_t> GatewayRemove(Sheep& s, uint64_t oid) {
  if (IsErasureCoded(s, oid)) co_return co_await EcRemove(s, oid);
  Header hdr;
  hdr.opcode = proto::op::kPeerRemove;
  hdr.set_oid(oid);
  co_return co_await FanOut(s, oid, hdr, {});
}

}  // namespace kelpie::sheep
