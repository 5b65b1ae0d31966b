// Client object I/O: READ_OBJ, WRITE_OBJ, CREATE_AND_WRITE_OBJ (with copy-on-write), REMOVE_OBJ,
// DISCARD_OBJ, FLUSH_VDI, COMPARE_AND_WRITE_OBJ.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "proto/inode.h"
#include "proto/oid.h"
#include "sheep/coherence.h"
#include "sheep/ec_gateway.h"
#include "sheep/gateway.h"
#include "sheep/ops.h"
#include "sheep/peer_ops.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

namespace res = proto::res;
using proto::Header;

namespace {

// Objects of a snapshot are read-only to clients: a write there means the client's inode is out
// of date (a snapshot was taken), and READONLY tells it to re-resolve the VDI's name.
bool IsReadonly(Sheep& s, uint64_t oid, const ClientInfo& c) {
  if (c.from_local) return false;
  return s.WithState([&](const ClusterState& st) {
    const VdiEntry* e = st.catalog.Find(proto::OidToVid(oid));
    return e != nullptr && e->snapshot;
  });
}

bool InBounds(Sheep& s, uint64_t oid, uint64_t offset, uint64_t len) {
  return len <= proto::kMaxDataLength && offset + len <= ObjectSize(s, oid);
}

}  // namespace

asio::awaitable<Reply> HandleReadObj(Sheep& s, Request& req, const ClientInfo& c) {
  const Header& h = req.hdr;
  if (!InBounds(s, h.oid(), h.offset(), h.data_length))
    co_return Reply::Error(h, res::kInvalidParms);
  if (uint32_t rc = CheckCoherence(s, h, c); rc != res::kSuccess) co_return Reply::Error(h, rc);
  Reply r = Reply::Ok(h);
  uint32_t rc;
  if (IsRefreshRead(h)) {
    rc = co_await RefreshRead(s, h, c, r.data);
  } else {
    rc = co_await GatewayRead(s, h.oid(), h.offset(), h.data_length, r.data);
  }
  if (rc != res::kSuccess) co_return Reply::Error(h, rc);
  r.hdr.data_length = uint32_t(r.data.size());
  r.hdr.set_rsp_copies(uint8_t(
      s.WithState([&](const ClusterState& st) { return st.CopiesOf(proto::OidToVid(h.oid())); })));
  co_return r;
}

asio::awaitable<Reply> HandleWriteObj(Sheep& s, Request& req, const ClientInfo& c) {
  const Header& h = req.hdr;
  if (!h.is_write() || !InBounds(s, h.oid(), h.offset(), req.data.size())) {
    co_return Reply::Error(h, res::kInvalidParms);
  }
  if (uint32_t rc = CheckCoherence(s, h, c); rc != res::kSuccess) co_return Reply::Error(h, rc);
  if (IsReadonly(s, h.oid(), c)) co_return Reply::Error(h, res::kReadonly);
  if (!TouchesIndex(h.oid(), h.offset(), req.data.size())) {
    // Write-back applies to data objects; inode changes are always durable before the ack.
    const bool write_back = (h.flags & proto::flag::kWriteBack) && proto::IsDataOid(h.oid());
    const uint32_t rc = co_await GatewayWrite(s, h.oid(), h.offset(), req.data, write_back);
    co_return Reply::Error(h, rc);
  }
  const uint32_t rc = co_await IndexUpdate(s, proto::OidToVid(h.oid()), c, [&]() {
    return GatewayWrite(s, h.oid(), h.offset(), req.data);
  });
  co_return Reply::Error(h, rc);
}

asio::awaitable<Reply> HandleCreateAndWriteObj(Sheep& s, Request& req, const ClientInfo& c) {
  const Header& h = req.hdr;
  const uint64_t oid = h.oid();
  if (!h.is_write() || !InBounds(s, oid, h.offset(), req.data.size())) {
    co_return Reply::Error(h, res::kInvalidParms);
  }
  if (uint32_t rc = CheckCoherence(s, h, c); rc != res::kSuccess) co_return Reply::Error(h, rc);
  if (IsReadonly(s, oid, c)) co_return Reply::Error(h, res::kReadonly);
  const uint64_t size = ObjectSize(s, oid);
  // Two clients may create the same data object at once (two targets writing one index of a
  // clone): the later create must not wipe the earlier one's bytes.
  const ClientRange mine{h.offset(), uint32_t(req.data.size())};
  const ClientRange* keep = proto::IsDataOid(oid) ? &mine : nullptr;
  if ((h.flags & proto::flag::kCow) && h.cow_oid() != 0) {
    // Copy-on-write: the new object starts as the ancestor's, with the client's bytes on top.
    if (!proto::IsDataOid(h.cow_oid()) ||
        proto::DataOidToIdx(h.cow_oid()) != proto::DataOidToIdx(oid)) {
      co_return Reply::Error(h, res::kInvalidParms);
    }
    std::vector<uint8_t> base;
    const uint32_t rc = co_await GatewayRead(s, h.cow_oid(), 0, uint32_t(size), base);
    if (rc != res::kSuccess) {
      spdlog::error("copy-on-write of {:016x} from {:016x}: {}", oid, h.cow_oid(),
                    proto::ResultText(rc));
      co_return Reply::Error(h, rc == res::kNoObj ? res::kBaseVdiRead : rc);
    }
    std::copy(req.data.begin(), req.data.end(), base.begin() + h.offset());
    co_return Reply::Error(h, co_await GatewayCreate(s, oid, size, 0, base, keep));
  }
  co_return Reply::Error(h, co_await GatewayCreate(s, oid, size, h.offset(), req.data, keep));
}

asio::awaitable<Reply> HandleRemoveObj(Sheep& s, Request& req, const ClientInfo&) {
  co_return Reply::Error(req.hdr, co_await GatewayRemove(s, req.hdr.oid()));
}

// DISCARD_OBJ on a data object: unmap its index in the VDI's inode, then drop the object if the
// VDI owned it (an ancestor's object stays: others may share it).
asio::awaitable<Reply> HandleDiscardObj(Sheep& s, Request& req, const ClientInfo& c) {
  const Header& h = req.hdr;
  const uint64_t oid = h.oid();
  if (!proto::IsDataOid(oid)) co_return Reply::Error(h, res::kInvalidParms);
  if (uint32_t rc = CheckCoherence(s, h, c); rc != res::kSuccess) co_return Reply::Error(h, rc);
  if (IsReadonly(s, oid, c)) co_return Reply::Error(h, res::kReadonly);
  const uint32_t vid = proto::OidToVid(oid);
  const uint32_t idx = proto::DataOidToIdx(oid);
  const uint64_t inode_oid = proto::VidToInodeOid(vid);
  const uint64_t entry_off = proto::inode_off::kDataVdiId + 4ull * idx;
  std::vector<uint8_t> cur;
  uint32_t rc = co_await GatewayRead(s, inode_oid, entry_off, 4, cur);
  if (rc != res::kSuccess) co_return Reply::Error(h, rc);
  const uint32_t owner = proto::LoadLE<uint32_t>(cur.data());
  if (owner == 0) co_return Reply::Ok(h);
  const std::array<uint8_t, 4> zero{};
  rc = co_await IndexUpdate(s, vid, c,
                            [&]() { return GatewayWrite(s, inode_oid, entry_off, zero); });
  if (rc != res::kSuccess) co_return Reply::Error(h, rc);
  if (owner == vid) {
    const uint32_t removed = co_await GatewayRemove(s, oid);
    if (removed != res::kSuccess) spdlog::warn("discard: could not remove {:016x}", oid);
  }
  co_return Reply::Ok(h);
}

// FLUSH_VDI: the point of durability of write-back writes (WRITE_OBJ with kWriteBack). The VDI is
// named by its inode oid (sheepdog's clients) or by base_vdi_id; other writes are durable before
// their ack, so a flush with nothing write-back pending costs one round to each node.
asio::awaitable<Reply> HandleFlushVdi(Sheep& s, Request& req, const ClientInfo&) {
  const Header& h = req.hdr;
  uint32_t vid = h.base_vdi_id();
  if (proto::IsInodeOid(h.oid())) vid = proto::OidToVid(h.oid());
  if (vid == 0) co_return Reply::Ok(h);  // nothing named: nothing of ours can be pending
  const uint32_t rc = co_await GatewayFlush(s, vid);
  co_return Reply::Error(h, rc);
}

namespace {

// Compares the object's bytes at h.offset() with the first half of data and, if equal, writes the
// second half there. The caller has serialized the object's compare-and-writes (and, for an
// erasure-coded object, all its writes) on this sheep.
asio::awaitable<Reply> CompareWrite(Sheep& s, const Header& h, std::span<const uint8_t> data) {
  const uint64_t oid = h.oid();
  const size_t n = data.size() / 2;
  std::vector<uint8_t> cur;
  uint32_t rc = co_await GatewayRead(s, oid, h.offset(), uint32_t(n), cur);
  if (rc != res::kSuccess) co_return Reply::Error(h, rc);
  const auto diff = std::mismatch(cur.begin(), cur.end(), data.begin());
  if (diff.first != cur.end()) {
    Reply r = Reply::Error(h, res::kMiscompare);
    r.hdr.set_rsp_offset(uint64_t(diff.first - cur.begin()));
    co_return r;
  }
  if (IsErasureCoded(s, oid)) {
    rc = co_await EcWriteSerialized(s, oid, h.offset(), data.subspan(n), EcMode::kWrite, nullptr);
  } else {
    rc = co_await GatewayWrite(s, oid, h.offset(), data.subspan(n));
  }
  co_return Reply::Error(h, rc);
}

}  // namespace

// COMPARE_AND_WRITE_OBJ (Kelpie): data = compare bytes then write bytes, within one existing
// data object. Atomic against every other COMPARE_AND_WRITE_OBJ of the object, whichever gateway
// it came through: all of them are forwarded to the object's first copy holder, which runs them
// one at a time. Answers MISCOMPARE with the first differing byte's offset in rsp_offset.
asio::awaitable<Reply> HandleCompareAndWriteObj(Sheep& s, Request& req, const ClientInfo& c) {
  const Header& h = req.hdr;
  const uint64_t oid = h.oid();
  if (!h.is_write() || !proto::IsDataOid(oid) || req.data.empty() || req.data.size() % 2 != 0 ||
      !InBounds(s, oid, h.offset(), req.data.size() / 2)) {
    co_return Reply::Error(h, res::kInvalidParms);
  }
  if (uint32_t rc = CheckCoherence(s, h, c); rc != res::kSuccess) co_return Reply::Error(h, rc);
  if (IsReadonly(s, oid, c)) co_return Reply::Error(h, res::kReadonly);
  Header ph = h;
  ph.opcode = proto::op::kPeerCompareWrite;
  const Reply r = co_await ForwardToFirstHolder(s, ph, req.data);
  Reply out = Reply::Error(h, r.result());
  out.hdr.set_rsp_offset(r.hdr.rsp_offset());
  co_return out;
}

asio::awaitable<Reply> HandlePeerCompareWrite(Sheep& s, Request& req, const ClientInfo&) {
  Reply r;
  const uint32_t rc = co_await Serialized(s, req.hdr.oid(), [&]() -> asio::awaitable<uint32_t> {
    r = co_await CompareWrite(s, req.hdr, req.data);
    co_return r.result();
  });
  if (rc != r.result()) co_return Reply::Error(req.hdr, rc);  // never got its turn
  co_return r;
}

}  // namespace kelpie::sheep
