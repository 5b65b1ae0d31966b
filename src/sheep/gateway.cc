#include "sheep/gateway.h"

#include <spdlog/spdlog.h>

#include <asio/experimental/concurrent_channel.hpp>

#include "proto/inode.h"
#include "proto/oid.h"
#include "sheep/asio_util.h"
#include "sheep/peer_ops.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

using asio::use_awaitable;
using proto::Header;
namespace res = proto::res;

namespace {

constexpr auto kRetryFor = std::chrono::seconds(60);

asio::awaitable<void> Sleep(Sheep& s, std::chrono::milliseconds d) {
  asio::steady_timer t(s.io(), d);
  co_await t.async_wait(use_awaitable);
}

std::vector<cluster::NodeInfo> Placement(Sheep& s, const View& v, uint64_t oid) {
  const size_t copies =
      s.WithState([&](const ClusterState& st) { return st.CopiesOf(proto::OidToVid(oid)); });
  return v.ring->PlaceNodes(oid, copies);
}

// Sends the same peer request to every node at once and collects the replies in node order.
asio::awaitable<std::vector<Reply>> CallAll(Sheep& s, const std::vector<cluster::NodeInfo>& nodes,
                                            const Header& hdr, std::span<const uint8_t> data) {
  using Done = asio::experimental::concurrent_channel<void(asio::error_code, size_t, Reply)>;
  auto done = std::make_shared<Done>(s.io(), nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    asio::co_spawn(
        s.io(),
        [&s, node = nodes[i], hdr, data, done, i]() -> asio::awaitable<void> {
          Reply r = co_await PeerCall(s, node, hdr, data);
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
  const auto deadline = std::chrono::steady_clock::now() + kRetryFor;
  for (;;) {
    const View v = s.view();
    if (!v.serving) {
      const bool serving = co_await s.WaitServing();
      if (!serving) co_return res::kHalt;
      continue;
    }
    if (!v.formatted) co_return res::kWaitForFormat;
    const auto nodes = Placement(s, v, oid);
    if (nodes.empty()) co_return res::kHalt;
    hdr.epoch = v.epoch;
    const std::vector<Reply> replies = co_await CallAll(s, nodes, hdr, data);
    uint32_t retry = res::kSuccess, error = res::kSuccess;
    for (const Reply& r : replies) {
      if (r.result() == res::kSuccess) continue;
      if (IsRetryable(r.result())) {
        retry = retry == res::kSuccess ? r.result() : retry;
      } else if (error == res::kSuccess) {
        error = r.result();
      }
    }
    if (retry == res::kSuccess) co_return error;
    const bool go_on = co_await AwaitEpochChange(s, v, retry, deadline);
    if (!go_on) {
      spdlog::error("gateway: opcode {:#x} on {:016x} gave up at epoch {}: {}", hdr.opcode, oid,
                    v.epoch, proto::ResultText(retry));
      co_return res::kEio;
    }
  }
}

}  // namespace

uint64_t ObjectSize(Sheep& s, uint64_t oid) {
  if (proto::IsInodeOid(oid)) return proto::kInodeObjectSize;
  return s.WithState([&](const ClusterState& st) { return st.ObjectSizeOf(proto::OidToVid(oid)); });
}

asio::awaitable<uint32_t> GatewayRead(Sheep& s, uint64_t oid, uint64_t offset, uint32_t len,
                                      std::vector<uint8_t>& out) {
  const auto deadline = std::chrono::steady_clock::now() + kRetryFor;
  Header hdr;
  hdr.opcode = proto::op::kPeerRead;
  hdr.set_oid(oid);
  hdr.set_offset(uint32_t(offset));
  hdr.data_length = len;
  for (;;) {
    const View v = s.view();
    if (!v.serving) {
      const bool serving = co_await s.WaitServing();
      if (!serving) co_return res::kHalt;
      continue;
    }
    if (!v.formatted) co_return res::kWaitForFormat;
    auto nodes = Placement(s, v, oid);
    if (nodes.empty()) co_return res::kHalt;
    // Prefer the local copy: no network hop.
    for (size_t i = 1; i < nodes.size(); ++i) {
      if (nodes[i] == s.self()) std::swap(nodes[0], nodes[i]);
    }
    hdr.epoch = v.epoch;
    // Every copy of the current placement is equally current: the first that answers wins.
    // A copy that says "no such object" is authoritative (writes reach every copy); an
    // unreachable one is not, so only unreachable copies make the read wait for a new epoch.
    uint32_t retry = res::kSuccess, error = res::kSuccess;
    bool no_obj = false;
    for (const auto& node : nodes) {
      Reply r = co_await PeerCall(s, node, hdr, {});
      const uint32_t rc = r.result();
      if (rc == res::kSuccess) {
        out = std::move(r.data);
        out.resize(len);
        co_return res::kSuccess;
      }
      if (rc == res::kOldNodeVer || rc == res::kNewNodeVer) {
        retry = rc;
        break;
      }
      if (rc == res::kNoObj)
        no_obj = true;
      else if (rc == res::kNetwork)
        retry = rc;
      else
        error = rc;
    }
    if (retry != res::kOldNodeVer && retry != res::kNewNodeVer) {
      if (no_obj) co_return res::kNoObj;
      if (error != res::kSuccess) co_return error;
    }
    const bool go_on = co_await AwaitEpochChange(s, v, retry, deadline);
    if (!go_on) co_return res::kEio;
  }
}

asio::awaitable<uint32_t> GatewayWrite(Sheep& s, uint64_t oid, uint64_t offset,
                                       std::span<const uint8_t> data) {
  Header hdr;
  hdr.opcode = proto::op::kPeerWrite;
  hdr.flags = proto::flag::kCmdWrite;
  hdr.set_oid(oid);
  hdr.set_offset(uint32_t(offset));
  co_return co_await FanOut(s, oid, hdr, data);
}

asio::awaitable<uint32_t> GatewayCreate(Sheep& s, uint64_t oid, uint64_t obj_size, uint64_t offset,
                                        std::span<const uint8_t> data,
                                        const ClientRange* keep_existing) {
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

asio::awaitable<uint32_t> GatewayRemove(Sheep& s, uint64_t oid) {
  Header hdr;
  hdr.opcode = proto::op::kPeerRemove;
  hdr.set_oid(oid);
  co_return co_await FanOut(s, oid, hdr, {});
}

}  // namespace kelpie::sheep
