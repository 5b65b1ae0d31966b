#include "sheep/peer_ops.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/experimental/concurrent_channel.hpp>

#include "proto/ec.h"
#include "sheep/asio_util.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

using proto::Header;
namespace res = proto::res;

namespace {

// Carries the store's "durable" completion from its committer thread to the waiting coroutine.
using DurableSignal = asio::experimental::concurrent_channel<void(asio::error_code, uint32_t)>;

uint8_t PeerFlags(const Header& h) { return h.Get<uint8_t>(35); }

// kSuccess if the request's epoch is this sheep's.
uint32_t CheckEpoch(Sheep& s, const Header& h) {
  if (PeerFlags(h) & peer_flag::kNoEpochCheck) return res::kSuccess;
  const uint32_t mine = s.view().epoch;
  if (h.epoch < mine) return res::kOldNodeVer;
  if (h.epoch > mine) return res::kNewNodeVer;
  return res::kSuccess;
}

// Runs store_op (a store call on this sheep's copy of oid, returning a proto::res code). When
// the copy is not here it may still be on its way (recovery): it is fetched, and store_op runs
// once more. The usual case, the copy present, costs no separate existence check.
template <typename StoreOp>
asio::awaitable<uint32_t> OnLocalCopy(Sheep& s, uint64_t oid, StoreOp store_op) {
  uint32_t rc = store_op();
  if (rc != res::kNoObj) co_return rc;
  rc = co_await s.recovery().EnsureLocal(oid);
  if (rc != res::kSuccess) co_return rc;
  co_return store_op();
}

}  // namespace

asio::awaitable<Reply> HandlePeerRead(Sheep& s, Request& req, const ClientInfo&) {
  const Header& h = req.hdr;
  const uint8_t pf = PeerFlags(h);
  const bool recovery_read = (pf & peer_flag::kWhole) != 0;
  if (!recovery_read) {
    if (uint32_t rc = CheckEpoch(s, h); rc != res::kSuccess) co_return Reply::Error(h, rc);
  }
  const uint64_t oid = proto::StoreKeyOf(h);  // the object's copy, or one strip of it
  if (oid == 0) co_return Reply::Error(h, res::kInvalidParms);
  if (!recovery_read) {
    if (h.data_length > proto::kMaxDataLength) co_return Reply::Error(h, res::kInvalidParms);
    Reply r = Reply::Ok(h);
    r.data.resize(h.data_length);
    const uint32_t rc =
        co_await OnLocalCopy(s, oid, [&]() { return s.store().Read(oid, h.offset(), r.data); });
    if (rc != res::kSuccess) co_return Reply::Error(h, rc);
    r.hdr.data_length = h.data_length;
    co_return r;
  }
  // A recovery or repair read: the whole copy, or the newest stale one when allowed.
  if (!s.store().Exists(oid)) {
    if (pf & peer_flag::kAllowStale) {
      if (auto stale = s.store().ReadStale(oid)) {
        Reply r = Reply::Ok(h);
        r.data = std::move(stale->data);
        r.hdr.data_length = uint32_t(r.data.size());
        r.hdr.Set<uint8_t>(35, peer_flag::kAnsweredStale);
        r.hdr.Set<uint32_t>(peer_flag::kStaleEpochAt, stale->epoch);
        co_return r;
      }
    }
    co_return Reply::Error(h, res::kNoObj);
  }
  const uint64_t len = s.store().Size(oid).value_or(0);
  if (len > proto::kMaxDataLength) co_return Reply::Error(h, res::kInvalidParms);
  Reply r = Reply::Ok(h);
  r.data.resize(len);
  const uint32_t rc = s.store().Read(oid, 0, r.data);
  if (rc != res::kSuccess) co_return Reply::Error(h, rc);
  r.hdr.data_length = uint32_t(len);
  co_return r;
}

asio::awaitable<Reply> HandlePeerWrite(Sheep& s, Request& req, const ClientInfo&) {
  const Header& h = req.hdr;
  if (uint32_t rc = CheckEpoch(s, h); rc != res::kSuccess) co_return Reply::Error(h, rc);
  const uint64_t oid = proto::StoreKeyOf(h);
  if (oid == 0) co_return Reply::Error(h, res::kInvalidParms);
  // The object lock orders this write against creates, removals and recovery of the object.
  if (h.flags & proto::flag::kWriteBack) {
    const uint32_t rc = co_await OnLocalCopy(s, oid, [&]() {
      std::lock_guard lk(s.recovery().ObjectLock(oid));
      return s.store().WriteBack(oid, h.offset(), req.data);
    });
    co_return Reply::Error(h, rc);
  }
  // The lock is released before the sync, so the object's next writers apply their bytes
  // meanwhile and share the sync (group commit) instead of queueing behind it.
  auto durable = std::make_shared<DurableSignal>(s.io(), 1);
  uint32_t rc = co_await OnLocalCopy(s, oid, [&]() {
    std::lock_guard lk(s.recovery().ObjectLock(oid));
    return s.store().WriteNoWait(oid, h.offset(), req.data, [durable](uint32_t r) {
      durable->try_send(asio::error_code{}, r);
    });
  });
  if (rc == res::kSuccess) {
    auto [ec, synced] = co_await durable->async_receive(kTuple);
    rc = ec ? res::kEio : synced;
  }
  co_return Reply::Error(h, rc);
}

asio::awaitable<Reply> HandlePeerCreateWrite(Sheep& s, Request& req, const ClientInfo&) {
  const Header& h = req.hdr;
  if (uint32_t rc = CheckEpoch(s, h); rc != res::kSuccess) co_return Reply::Error(h, rc);
  const uint64_t obj_size = h.cow_oid();  // peer view: the object's size travels here
  const uint64_t key = proto::StoreKeyOf(h);
  if (key == 0 || obj_size == 0 || h.offset() + req.data.size() > obj_size) {
    co_return Reply::Error(h, res::kInvalidParms);
  }
  const bool keep = (PeerFlags(h) & peer_flag::kKeepExisting) != 0;
  const uint64_t from = h.Get<uint32_t>(peer_flag::kKeepOffsetAt);
  const uint64_t len = h.Get<uint32_t>(peer_flag::kKeepLengthAt);
  if (keep && (from < h.offset() || from + len > h.offset() + req.data.size())) {
    co_return Reply::Error(h, res::kInvalidParms);
  }
  // A copy elsewhere that recovery has not brought here yet counts as existing: pull it first.
  if (keep) co_await s.recovery().EnsureLocal(key);
  std::lock_guard lk(s.recovery().ObjectLock(key));
  // Checked under the lock: another client's create of the object may have landed meanwhile.
  if (keep && s.store().Exists(key)) {
    const auto part = std::span<const uint8_t>(req.data).subspan(from - h.offset(), len);
    co_return Reply::Error(h, s.store().Write(key, from, part));
  }
  co_return Reply::Error(h, s.store().CreateAndWrite(key, obj_size, h.offset(), req.data));
}

asio::awaitable<Reply> HandlePeerFlush(Sheep& s, Request& req, const ClientInfo&) {
  const Header& h = req.hdr;
  if (req.data.size() % 4 != 0) co_return Reply::Error(h, res::kInvalidParms);
  std::vector<uint32_t> vids(req.data.size() / 4);
  for (size_t i = 0; i < vids.size(); ++i) vids[i] = proto::LoadLE<uint32_t>(&req.data[i * 4]);
  auto durable = std::make_shared<DurableSignal>(s.io(), 1);
  s.store().Flush(vids, [durable](uint32_t r) { durable->try_send(asio::error_code{}, r); });
  auto [ec, synced] = co_await durable->async_receive(kTuple);
  co_return Reply::Error(h, ec ? res::kEio : synced);
}

asio::awaitable<Reply> HandlePeerWaitSeq(Sheep& s, Request& req, const ClientInfo&) {
  const bool ok = co_await s.WaitForSeq(req.hdr.oid(), std::chrono::seconds(10));
  co_return Reply::Error(req.hdr, ok ? res::kSuccess : res::kSystemError);
}

asio::awaitable<Reply> HandlePeerRemove(Sheep& s, Request& req, const ClientInfo&) {
  const Header& h = req.hdr;
  if (uint32_t rc = CheckEpoch(s, h); rc != res::kSuccess) co_return Reply::Error(h, rc);
  const uint64_t key = proto::StoreKeyOf(h);
  if (key == 0) co_return Reply::Error(h, res::kInvalidParms);
  std::lock_guard lk(s.recovery().ObjectLock(key));
  s.store().DropStale(key);
  const uint32_t rc = s.store().Remove(key);
  co_return Reply::Error(h, rc == res::kNoObj ? res::kSuccess : rc);
}

asio::awaitable<Reply> HandlePeerObjList(Sheep& s, Request& req, const ClientInfo&) {
  std::vector<uint64_t> oids = s.store().List();
  const std::vector<uint64_t> stale = s.store().ListStale();
  oids.insert(oids.end(), stale.begin(), stale.end());
  std::sort(oids.begin(), oids.end());
  oids.erase(std::unique(oids.begin(), oids.end()), oids.end());
  Reply r = Reply::Ok(req.hdr);
  r.data.resize(oids.size() * 8);
  for (size_t i = 0; i < oids.size(); ++i) proto::StoreLE<uint64_t>(&r.data[i * 8], oids[i]);
  r.hdr.data_length = uint32_t(r.data.size());
  co_return r;
}

asio::awaitable<Reply> HandlePeerObjExists(Sheep& s, Request& req, const ClientInfo&) {
  const uint64_t key = proto::StoreKeyOf(req.hdr);
  co_return Reply::Error(req.hdr, key != 0 && s.store().Exists(key) ? res::kSuccess : res::kNoObj);
}

asio::awaitable<Reply> PeerCall(Sheep& s, const cluster::NodeInfo& node, Header hdr,
                                std::span<const uint8_t> data) {
  hdr.proto_ver = proto::kPeerProtoVer;
  if (node == s.self()) {
    Request req{hdr, std::vector<uint8_t>(data.begin(), data.end())};
    if (req.hdr.flags & proto::flag::kCmdWrite) req.hdr.data_length = uint32_t(data.size());
    ClientInfo local;
    local.from_local = true;
    co_return co_await s.Dispatch(std::move(req), local);
  }
  co_return co_await s.peers().Call(node, hdr, data);
}

asio::awaitable<uint32_t> PeerListObjects(Sheep& s, const cluster::NodeInfo& node,
                                          std::vector<uint64_t>& out) {
  Header h;
  h.opcode = proto::op::kPeerObjList;
  h.Set<uint8_t>(35, peer_flag::kNoEpochCheck);
  const Reply r = co_await PeerCall(s, node, h, {});
  if (r.result() != res::kSuccess) co_return r.result();
  out.clear();
  for (size_t i = 0; i + 8 <= r.data.size(); i += 8)
    out.push_back(proto::LoadLE<uint64_t>(&r.data[i]));
  co_return res::kSuccess;
}

asio::awaitable<uint32_t> PeerReadWhole(Sheep& s, const cluster::NodeInfo& node, uint64_t key,
                                        bool allow_stale, WholeCopy& out) {
  Header h;
  h.opcode = proto::op::kPeerRead;
  proto::SetStoreKey(h, key);
  h.Set<uint8_t>(35, uint8_t(peer_flag::kWhole | peer_flag::kNoEpochCheck |
                             (allow_stale ? peer_flag::kAllowStale : 0)));
  Reply r = co_await PeerCall(s, node, h, {});
  if (r.result() != res::kSuccess) co_return r.result();
  out.data = std::move(r.data);
  out.stale_epoch.reset();
  if (PeerFlags(r.hdr) & peer_flag::kAnsweredStale)
    out.stale_epoch = r.hdr.Get<uint32_t>(peer_flag::kStaleEpochAt);
  co_return res::kSuccess;
}

asio::awaitable<uint32_t> PeerRewriteWhole(Sheep& s, const cluster::NodeInfo& node, uint32_t epoch,
                                           uint64_t oid, std::span<const uint8_t> whole) {
  Header h;
  h.opcode = proto::op::kPeerCreateWrite;
  h.flags = proto::flag::kCmdWrite;
  h.epoch = epoch;
  h.set_oid(oid);
  h.set_cow_oid(whole.size());
  const Reply r = co_await PeerCall(s, node, h, whole);
  co_return r.result();
}

}  // namespace kelpie::sheep
