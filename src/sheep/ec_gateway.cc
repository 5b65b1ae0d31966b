#include "sheep/ec_gateway.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "proto/ec.h"
#include "sheep/erasure_code.h"
#include "sheep/peer_ops.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

using proto::Header;
namespace res = proto::res;

namespace {

// kPeerEcWrite: obj.copies (@32) carries the EcMode, with this bit when a keep range follows.
constexpr uint8_t kModeHasKeep = 0x80;

struct EcObject {
  proto::EcPolicy policy;
  uint64_t object_size = 0;
  uint64_t strip_size() const { return object_size / uint64_t(policy.data); }
};

EcObject Describe(Sheep& s, uint64_t oid) {
  return s.WithState([&](const ClusterState& st) {
    return EcObject{st.EcOf(oid), st.ObjectSizeOf(proto::OidToVid(oid))};
  });
}

const ErasureCode& CodeFor(proto::EcPolicy p) { return ErasureCode::Shared(p.data, p.parity); }

Header StripHeader(uint8_t opcode, uint64_t oid, int strip, uint32_t epoch) {
  Header h;
  h.opcode = opcode;
  h.epoch = epoch;
  proto::SetStoreKey(h, proto::StripKey(oid, strip));
  return h;
}

// The whole stripes covering object bytes [off, off + len): where they start and how long they
// are in the object, and the same rows in every strip.
struct Rows {
  uint64_t object_offset = 0, object_length = 0;
  uint32_t strip_offset = 0, strip_length = 0;
};

Rows RowsOf(const ErasureCode& code, uint64_t off, uint64_t len) {
  const uint64_t stripe = ErasureCode::kChunk * uint64_t(code.data());
  const uint64_t first = off / stripe;
  const uint64_t last = len == 0 ? first : (off + len - 1) / stripe;
  return Rows{first * stripe, (last - first + 1) * stripe, uint32_t(first * ErasureCode::kChunk),
              uint32_t((last - first + 1) * ErasureCode::kChunk)};
}

size_t PlacedStrips(const ErasureCode& code, const std::vector<cluster::NodeInfo>& nodes) {
  return std::min(nodes.size(), size_t(code.strips()));
}

// Rebuilds the data strips missing from `strips` (empty vectors) from D present ones.
bool DecodeMissingData(const ErasureCode& code, size_t len,
                       std::vector<std::vector<uint8_t>>& strips) {
  std::vector<int> want;
  strips.resize(size_t(code.strips()));
  for (int i = 0; i < code.data(); ++i) {
    if (strips[size_t(i)].empty()) want.push_back(i);
  }
  return code.Rebuild(strips, len, want);
}

// Computes the parity strips (resized to len) from the D data strips.
void EncodeParity(const ErasureCode& code, size_t len, std::vector<std::vector<uint8_t>>& strips) {
  strips.resize(size_t(code.strips()));
  std::vector<const uint8_t*> data;
  std::vector<uint8_t*> parity;
  for (int i = 0; i < code.strips(); ++i) {
    strips[size_t(i)].resize(len);
    if (i < code.data())
      data.push_back(strips[size_t(i)].data());
    else
      parity.push_back(strips[size_t(i)].data());
  }
  code.Encode(len, data, parity);
}

// Reads `rows` of the object as object bytes into region: data strips first, a parity strip in
// place of each that fails. kNoObj when no strip exists; a retryable code when too few strips
// answered because of the epoch or an unreachable node.
asio::awaitable<uint32_t> ReadRows(Sheep& s, const View& v,
                                   const std::vector<cluster::NodeInfo>& nodes,
                                   const ErasureCode& code, uint64_t oid, const Rows& rows,
                                   std::vector<uint8_t>& region) {
  const size_t placed = PlacedStrips(code, nodes);
  if (placed < size_t(code.data())) co_return res::kHalt;
  std::vector<std::vector<uint8_t>> strips(size_t(code.strips()));
  size_t have = 0, next = 0;
  uint32_t retry = res::kSuccess, error = res::kSuccess;
  bool no_obj = false;
  while (have < size_t(code.data()) && next < placed) {
    std::vector<size_t> batch;
    while (have + batch.size() < size_t(code.data()) && next < placed) batch.push_back(next++);
    std::vector<cluster::NodeInfo> to;
    std::vector<Header> hdrs;
    for (size_t i : batch) {
      to.push_back(nodes[i]);
      hdrs.push_back(StripHeader(proto::op::kPeerRead, oid, int(i), v.epoch));
      hdrs.back().set_offset(rows.strip_offset);
      hdrs.back().data_length = rows.strip_length;
    }
    std::vector<Reply> replies =
        co_await CallEach(s, to, hdrs, std::vector<std::span<const uint8_t>>(batch.size()));
    for (size_t b = 0; b < batch.size(); ++b) {
      const uint32_t rc = replies[b].result();
      if (rc == res::kSuccess) {
        strips[batch[b]] = std::move(replies[b].data);
        strips[batch[b]].resize(rows.strip_length);
        ++have;
      } else if (rc == res::kOldNodeVer || rc == res::kNewNodeVer) {
        co_return rc;
      } else if (rc == res::kNoObj) {
        no_obj = true;
      } else if (rc == res::kNetwork) {
        retry = rc;
      } else {
        error = rc;
      }
    }
  }
  if (have < size_t(code.data())) {
    if (retry != res::kSuccess) co_return retry;
    if (no_obj) co_return res::kNoObj;
    co_return error != res::kSuccess ? error : res::kEio;
  }
  if (!DecodeMissingData(code, rows.strip_length, strips)) co_return res::kEio;
  region.resize(rows.object_length);
  strips.resize(size_t(code.data()));
  code.Join(strips, region);
  co_return res::kSuccess;
}

}  // namespace

bool ValidCopyPolicy(Sheep& s, int copies, int policy) {
  if (policy == 0) return true;
  const proto::EcPolicy ec = proto::EcFromCopyPolicy(uint8_t(policy));
  if (policy > 0xff || !ec.coded() || ec.strips() != copies) return false;
  const size_t zones = s.view().ring->nr_zones();
  if (zones < size_t(copies)) {
    spdlog::warn("erasure coding {}:{} needs {} zones, the cluster has {}", ec.data, ec.parity,
                 copies, zones);
    return false;
  }
  return true;
}

bool IsErasureCoded(Sheep& s, uint64_t oid) {
  return s.WithState([&](const ClusterState& st) { return st.EcOf(oid).coded(); });
}

asio::awaitable<uint32_t> EcRead(Sheep& s, uint64_t oid, uint64_t offset, uint32_t len,
                                 std::vector<uint8_t>& out) {
  const EcObject o = Describe(s, oid);
  const ErasureCode& code = CodeFor(o.policy);
  const Rows rows = RowsOf(code, offset, len);
  co_return co_await RetryAcrossEpochs(
      s, oid, proto::op::kPeerRead, [&](const View& v) -> asio::awaitable<uint32_t> {
        std::vector<uint8_t> region;
        const uint32_t rc =
            co_await ReadRows(s, v, PlacementOf(s, v, oid), code, oid, rows, region);
        if (rc != res::kSuccess) co_return rc;
        const auto from = region.begin() + std::ptrdiff_t(offset - rows.object_offset);
        out.assign(from, from + len);
        co_return res::kSuccess;
      });
}

asio::awaitable<uint32_t> EcWrite(Sheep& s, uint64_t oid, uint64_t offset,
                                  std::span<const uint8_t> data, EcMode mode,
                                  const ClientRange* keep) {
  if (mode == EcMode::kWrite && data.empty()) co_return res::kSuccess;
  Header h;
  h.opcode = proto::op::kPeerEcWrite;
  h.flags = proto::flag::kCmdWrite;
  h.set_oid(oid);
  h.set_offset(uint32_t(offset));
  h.set_obj_copies(uint8_t(uint8_t(mode) | (keep != nullptr ? kModeHasKeep : 0)));
  if (keep != nullptr) {
    h.Set<uint32_t>(peer_flag::kKeepOffsetAt, keep->offset);
    h.Set<uint32_t>(peer_flag::kKeepLengthAt, keep->length);
  }
  const Reply r = co_await ForwardToFirstHolder(s, h, data);
  co_return r.result();
}

asio::awaitable<uint32_t> EcWriteSerialized(Sheep& s, uint64_t oid, uint64_t offset,
                                            std::span<const uint8_t> data, EcMode mode,
                                            const ClientRange* keep) {
  const EcObject o = Describe(s, oid);
  const ErasureCode& code = CodeFor(o.policy);
  // What lands on an object that already exists: the keep range of a create, else all of it.
  uint64_t wr_off = offset;
  std::span<const uint8_t> wr = data;
  if (mode == EcMode::kCreate && keep != nullptr) {
    wr_off = keep->offset;
    wr = data.subspan(keep->offset - offset, keep->length);
  }
  co_return co_await RetryAcrossEpochs(
      s, oid, proto::op::kPeerEcWrite, [&](const View& v) -> asio::awaitable<uint32_t> {
        const auto nodes = PlacementOf(s, v, oid);
        const size_t placed = PlacedStrips(code, nodes);
        if (placed < size_t(code.data())) co_return res::kHalt;
        Rows rows = RowsOf(code, wr_off, wr.size());
        std::vector<uint8_t> region;
        bool exists = true;
        const bool whole_stripes = rows.object_offset == wr_off && rows.object_length == wr.size();
        if (!whole_stripes || mode == EcMode::kCreate) {
          const uint32_t rc = co_await ReadRows(s, v, nodes, code, oid, rows, region);
          if (rc == res::kNoObj)
            exists = false;
          else if (rc != res::kSuccess)
            co_return rc;
        }
        if (!exists && mode == EcMode::kWrite) co_return res::kNoObj;
        if (exists && wr.empty()) co_return res::kSuccess;
        if (!exists) {
          // A new object: zeros except the whole image given; untouched rows stay zero on every
          // strip (the code is linear: zero data has zero parity).
          rows = RowsOf(code, offset, data.size());
          region.assign(rows.object_length, 0);
          std::copy(data.begin(), data.end(), region.begin() + (offset - rows.object_offset));
        } else {
          region.resize(rows.object_length);
          std::copy(wr.begin(), wr.end(), region.begin() + (wr_off - rows.object_offset));
        }
        std::vector<std::vector<uint8_t>> strips;
        code.Split(region, strips);
        EncodeParity(code, rows.strip_length, strips);
        std::vector<cluster::NodeInfo> to(nodes.begin(), nodes.begin() + std::ptrdiff_t(placed));
        std::vector<Header> hdrs;
        std::vector<std::span<const uint8_t>> bufs;
        for (size_t i = 0; i < placed; ++i) {
          hdrs.push_back(StripHeader(exists ? proto::op::kPeerWrite : proto::op::kPeerCreateWrite,
                                     oid, int(i), v.epoch));
          hdrs.back().flags = proto::flag::kCmdWrite;
          hdrs.back().set_offset(rows.strip_offset);
          if (!exists) hdrs.back().set_cow_oid(o.strip_size());
          bufs.emplace_back(strips[i]);
        }
        co_return WorstResult(co_await CallEach(s, to, hdrs, bufs));
      });
}

asio::awaitable<uint32_t> EcRemove(Sheep& s, uint64_t oid) {
  const ErasureCode& code = CodeFor(Describe(s, oid).policy);
  co_return co_await RetryAcrossEpochs(
      s, oid, proto::op::kPeerRemove, [&](const View& v) -> asio::awaitable<uint32_t> {
        auto nodes = PlacementOf(s, v, oid);
        nodes.resize(PlacedStrips(code, nodes));
        std::vector<Header> hdrs;
        for (size_t i = 0; i < nodes.size(); ++i)
          hdrs.push_back(StripHeader(proto::op::kPeerRemove, oid, int(i), v.epoch));
        co_return WorstResult(
            co_await CallEach(s, nodes, hdrs, std::vector<std::span<const uint8_t>>(nodes.size())));
      });
}

asio::awaitable<Reply> HandlePeerEcWrite(Sheep& s, Request& req, const ClientInfo&) {
  const Header& h = req.hdr;
  const uint64_t oid = h.oid();
  if (!proto::IsDataOid(oid) || !IsErasureCoded(s, oid))
    co_return Reply::Error(h, res::kInvalidParms);
  const uint8_t mode_byte = h.obj_copies();
  const auto mode = EcMode(mode_byte & ~kModeHasKeep);
  const uint64_t size = ObjectSize(s, oid);
  ClientRange keep{h.Get<uint32_t>(peer_flag::kKeepOffsetAt),
                   h.Get<uint32_t>(peer_flag::kKeepLengthAt)};
  const bool has_keep = (mode_byte & kModeHasKeep) != 0;
  if ((mode != EcMode::kWrite && mode != EcMode::kCreate) || h.offset() + req.data.size() > size ||
      (has_keep && (keep.offset < h.offset() ||
                    uint64_t(keep.offset) + keep.length > h.offset() + req.data.size()))) {
    co_return Reply::Error(h, res::kInvalidParms);
  }
  const uint32_t rc = co_await Serialized(s, oid, [&]() {
    return EcWriteSerialized(s, oid, h.offset(), req.data, mode, has_keep ? &keep : nullptr);
  });
  co_return Reply::Error(h, rc);
}

asio::awaitable<nlohmann::json> EcCheck(Sheep& s, uint64_t oid) {
  using nlohmann::json;
  const EcObject o = Describe(s, oid);
  const ErasureCode& code = CodeFor(o.policy);
  const View v = s.view();
  const auto nodes = PlacementOf(s, v, oid);
  const size_t placed = PlacedStrips(code, nodes);
  const size_t len = o.strip_size();
  std::vector<std::vector<uint8_t>> found(size_t(code.strips()));
  size_t present = 0;
  for (size_t i = 0; i < placed; ++i) {
    WholeCopy copy;
    const uint32_t rc =
        co_await PeerReadWhole(s, nodes[i], proto::StripKey(oid, int(i)), false, copy);
    if (rc == res::kSuccess && copy.data.size() == len) {
      found[i] = std::move(copy.data);
      ++present;
    }
  }
  json missing = json::array(), repaired = json::array();
  if (present < size_t(code.data())) {
    co_return json{{"oid", oid},           {"copies", placed},   {"ok", false},
                   {"lost", true},         {"missing", missing}, {"repaired", repaired},
                   {"unrecoverable", true}};
  }
  // The data strips are the truth (rebuilt from parity where missing); parity is recomputed.
  std::vector<std::vector<uint8_t>> want = found;
  DecodeMissingData(code, len, want);
  want.resize(size_t(code.data()));
  EncodeParity(code, len, want);
  for (size_t i = 0; i < placed; ++i) {
    if (found[i] == want[i]) continue;
    const bool was_missing = found[i].empty();
    (was_missing ? missing : repaired).push_back(nodes[i].id());
    Header h = StripHeader(proto::op::kPeerCreateWrite, oid, int(i), v.epoch);
    h.flags = proto::flag::kCmdWrite;
    h.set_cow_oid(len);
    const Reply r = co_await PeerCall(s, nodes[i], h, want[i]);
    if (r.result() != res::kSuccess) {
      spdlog::error("check {:016x}: repairing strip {} on {} failed: {}", oid, i, nodes[i].id(),
                    proto::ResultText(r.result()));
    } else {
      spdlog::warn("check {:016x}: strip {} on {} {}", oid, i, nodes[i].id(),
                   was_missing ? "was missing, rebuilt" : "differed, rewritten");
    }
  }
  co_return json{{"oid", oid},    {"copies", placed},   {"ok", missing.empty() && repaired.empty()},
                 {"lost", false}, {"missing", missing}, {"repaired", repaired}};
}

}  // namespace kelpie::sheep
