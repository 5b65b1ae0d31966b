#include "sheep/coherence.h"

#include <spdlog/spdlog.h>

#include "proto/inode.h"
#include "proto/oid.h"
#include "sheep/gateway.h"
#include "sheep/peer_ops.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

namespace res = proto::res;
using proto::Header;

namespace {

constexpr auto kBarrierTimeout = std::chrono::seconds(30);
constexpr int kRefreshAttempts = 3;

uint32_t ParentOf(const ClusterState& st, uint32_t vid) {
  const VdiEntry* e = st.catalog.Find(vid);
  return e == nullptr ? 0 : e->parent_vid;
}

// Applies a "modify" operation for (vid, participant) and waits for every sheep to apply it.
asio::awaitable<uint32_t> OrderedModify(Sheep& s, uint32_t vid, const std::string& participant) {
  nlohmann::json op = {{"type", "modify"}, {"vid", vid}, {"participant", participant}};
  const nlohmann::json r = co_await s.SubmitClusterOp(std::move(op));
  uint32_t rc = r.value("result", uint32_t(res::kSystemError));
  if (rc == res::kSuccess) rc = co_await ClusterBarrier(s, r.value("seq", uint64_t(0)));
  if (rc != res::kSuccess) {
    spdlog::error("vdi {:x}: cannot invalidate the other participants: {}", vid,
                  proto::ResultText(rc));
  }
  co_return rc;
}

// A READ_OBJ of an inode from its first byte, at least min_len long.
bool IsInodeReadFromStart(const Header& h, size_t min_len) {
  return h.opcode == proto::op::kReadObj && proto::IsInodeOid(h.oid()) && h.offset() == 0 &&
         h.data_length >= min_len;
}

}  // namespace

bool IsRefreshRead(const Header& h) { return IsInodeReadFromStart(h, proto::kInodeRefreshSize); }

bool TouchesIndex(uint64_t oid, uint64_t offset, uint64_t len) {
  return proto::IsInodeOid(oid) && offset + len > proto::inode_off::kDataVdiId &&
         offset < proto::inode_off::kGref;
}

uint32_t CheckCoherence(Sheep& s, const Header& h, const ClientInfo& c) {
  if (c.from_local || (h.flags & proto::flag::kTgt) == 0) return res::kSuccess;
  const uint64_t oid = h.oid();
  if (IsInodeReadFromStart(h, proto::kInodeHeaderSize)) return res::kSuccess;
  if (proto::IsInodeOid(oid) && h.opcode == proto::op::kWriteObj) return res::kSuccess;
  const bool stale = s.WithState([&](const ClusterState& st) {
    return st.locks.MustRefresh(c.participant, proto::OidToVid(oid),
                                [&](uint32_t v) { return ParentOf(st, v); });
  });
  return stale ? res::kInodeInvalidated : res::kSuccess;
}

asio::awaitable<uint32_t> RefreshRead(Sheep& s, const Header& h, const ClientInfo& c,
                                      std::vector<uint8_t>& out) {
  if (c.from_local) co_return co_await GatewayRead(s, h.oid(), h.offset(), h.data_length, out);
  const uint32_t vid = proto::OidToVid(h.oid());
  for (int attempt = 0;; ++attempt) {
    std::optional<ParticipantState> state;
    uint64_t gen = 0;
    s.WithState([&](const ClusterState& st) {
      if (const ParticipantState* p = st.locks.StateOf(vid, c.participant)) state = *p;
      if (const VdiLock* l = st.locks.Find(vid)) gen = l->gen;
      return 0;
    });
    const uint32_t rc = co_await GatewayRead(s, h.oid(), h.offset(), h.data_length, out);
    if (rc != res::kSuccess || !state || *state == ParticipantState::kShared) {
      co_return rc;
    }
    nlohmann::json op = {
        {"type", "validate"}, {"vid", vid}, {"participant", c.participant}, {"gen", gen}};
    const nlohmann::json r = co_await s.SubmitClusterOp(std::move(op));
    if (r.value("valid", false) || attempt + 1 == kRefreshAttempts) {
      // Still invalid after several tries (index writes keep coming): the reader keeps its
      // Invalidated state and will be told to refresh again.
      co_return res::kSuccess;
    }
  }
}

asio::awaitable<uint32_t> IndexUpdate(Sheep& s, uint32_t vid, const ClientInfo& c,
                                      std::function<asio::awaitable<uint32_t>()> update) {
  bool participant = false, needs_modify = false;
  s.WithState([&](const ClusterState& st) {
    participant = st.locks.StateOf(vid, c.participant) != nullptr;
    needs_modify = st.locks.NeedsModify(vid, c.participant);
    return 0;
  });
  if (!participant || c.from_local) co_return co_await update();
  if (needs_modify) {
    if (uint32_t rc = co_await OrderedModify(s, vid, c.participant); rc != res::kSuccess) {
      co_return rc;
    }
  }
  const uint32_t rc = co_await update();
  // Also after the update: a participant that refreshed while the table changed is invalidated
  // again, before this write is acknowledged.
  const uint32_t mrc = co_await OrderedModify(s, vid, c.participant);
  co_return rc != res::kSuccess ? rc : mrc;
}

asio::awaitable<uint32_t> ClusterBarrier(Sheep& s, uint64_t seq) {
  const auto deadline = std::chrono::steady_clock::now() + kBarrierTimeout;
  asio::steady_timer pause(s.io());
  for (const auto& node : s.view().ring->nodes()) {
    if (node == s.self()) continue;
    for (;;) {
      Header h;
      h.opcode = proto::op::kPeerWaitSeq;
      h.set_oid(seq);
      h.Set<uint8_t>(35, peer_flag::kNoEpochCheck);
      const Reply r = co_await PeerCall(s, node, h, {});
      if (r.result() == res::kSuccess) break;
      // A member that cannot answer is about to leave the cluster; once it has, it no longer
      // serves anyone.
      bool still_member = false;
      for (const auto& n : s.view().ring->nodes()) still_member |= n == node;
      if (!still_member) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        spdlog::error("barrier at event {}: {} does not answer", seq, node.id());
        co_return res::kSystemError;
      }
      pause.expires_after(std::chrono::milliseconds(20));
      co_await pause.async_wait(asio::use_awaitable);
    }
  }
  co_return res::kSuccess;
}

}  // namespace kelpie::sheep
