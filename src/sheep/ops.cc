#include "sheep/ops.h"

#include <spdlog/spdlog.h>

#include <array>

#include "proto/constants.h"
#include "sheep/ec_gateway.h"
#include "sheep/peer_ops.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

namespace op = proto::op;

namespace {

// clang-format off
constexpr OpInfo kOps[] = {
    // Client object I/O (the gateway).
    {op::kCreateAndWriteObj, "CREATE_AND_WRITE_OBJ", HandleCreateAndWriteObj, true},
    {op::kReadObj,           "READ_OBJ",             HandleReadObj,           true},
    {op::kWriteObj,          "WRITE_OBJ",            HandleWriteObj,          true},
    {op::kRemoveObj,         "REMOVE_OBJ",           HandleRemoveObj,         true},
    {op::kDiscardObj,        "DISCARD_OBJ",          HandleDiscardObj,        true},
    {op::kFlushVdi,          "FLUSH_VDI",            HandleFlushVdi,          false},
    {op::kCompareAndWriteObj, "COMPARE_AND_WRITE_OBJ", HandleCompareAndWriteObj, true},
    // VDIs and locks (ordered cluster operations).
    {op::kNewVdi,            "NEW_VDI",              HandleNewVdi,            true},
    {op::kLockVdi,           "LOCK_VDI",             HandleLockVdi,           true},
    {op::kReleaseVdi,        "RELEASE_VDI",          HandleReleaseVdi,        true},
    {op::kGetVdiInfo,        "GET_VDI_INFO",         HandleGetVdiInfo,        true},
    {op::kReadVdis,          "READ_VDIS",            HandleReadVdis,          true},
    {op::kDelVdi,            "DEL_VDI",              HandleDelVdi,            true},
    {op::kGetClusterDefault, "GET_CLUSTER_DEFAULT",  HandleGetClusterDefault, true},
    // Administration (dog).
    {op::kGetNodeList,       "GET_NODE_LIST",        HandleGetNodeList,       false},
    {op::kMakeFs,            "MAKE_FS",              HandleMakeFs,            false},
    {op::kShutdown,          "SHUTDOWN",             HandleShutdown,          false},
    {op::kStatCluster,       "STAT_CLUSTER",         HandleStatCluster,       false},
    {op::kGetNodeInfo,       "GET_NODE_INFO",        HandleGetNodeInfo,       false},
    {op::kRecoveryStatus,    "RECOVERY_STATUS",      HandleRecoveryStatus,    false},
    {op::kLockList,          "LOCK_LIST",            HandleLockList,          true},
    {op::kLockUnlock,        "LOCK_UNLOCK",          HandleLockUnlock,        true},
    {op::kObjLocate,         "OBJ_LOCATE",           HandleObjLocate,         true},
    {op::kCheckObj,          "CHECK_OBJ",            HandleCheckObj,          true},
    {op::kSetClientId,       "SET_CLIENT_ID",        HandleSetClientId,       false},
    // Shared state of iSCSI logical units exported by several targets.
    {op::kLuStateGet,        "LU_STATE_GET",         HandleLuStateGet,        true},
    {op::kLuStateCas,        "LU_STATE_CAS",         HandleLuStateCas,        true},
    // Sheep to sheep: the copies a node stores.
    {op::kPeerRead,          "PEER_READ",            HandlePeerRead,          false},
    {op::kPeerWrite,         "PEER_WRITE",           HandlePeerWrite,         false},
    {op::kPeerCreateWrite,   "PEER_CREATE_WRITE",    HandlePeerCreateWrite,   false},
    {op::kPeerRemove,        "PEER_REMOVE",          HandlePeerRemove,        false},
    {op::kPeerObjList,       "PEER_OBJ_LIST",        HandlePeerObjList,       false},
    {op::kPeerObjExists,     "PEER_OBJ_EXISTS",      HandlePeerObjExists,     false},
    {op::kPeerWaitSeq,       "PEER_WAIT_SEQ",        HandlePeerWaitSeq,       false},
    {op::kPeerCompareWrite,  "PEER_COMPARE_WRITE",   HandlePeerCompareWrite,  false},
    {op::kPeerEcWrite,       "PEER_EC_WRITE",        HandlePeerEcWrite,       false},
    {op::kPeerFlush,         "PEER_FLUSH",           HandlePeerFlush,         false},
};
// clang-format on

constexpr std::array<const OpInfo*, 256> BuildIndex() {
  std::array<const OpInfo*, 256> idx{};
  for (const OpInfo& o : kOps) idx[o.opcode] = &o;
  return idx;
}
constexpr auto kIndex = BuildIndex();

}  // namespace

const OpInfo* FindOp(uint8_t opcode) { return kIndex[opcode]; }

std::span<const OpInfo> AllOps() { return kOps; }

Reply JsonReply(const proto::Header& req, const std::string& body) {
  Reply r = Reply::Ok(req);
  r.data.assign(body.begin(), body.end());
  r.hdr.data_length = uint32_t(r.data.size());
  return r;
}

asio::awaitable<Reply> Sheep::Dispatch(Request req, const ClientInfo& client) {
  const OpInfo* info = FindOp(req.hdr.opcode);
  if (info == nullptr) {
    spdlog::warn("{}: unknown opcode {:#x}", client.peer.empty() ? "local" : client.peer,
                 req.hdr.opcode);
    co_return Reply::Error(req.hdr, proto::res::kInvalidParms);
  }
  const View v = view();
  if (v.shutting_down) co_return Reply::Error(req.hdr, proto::res::kShutdown);
  if (info->needs_format && !v.formatted) {
    co_return Reply::Error(req.hdr, proto::res::kWaitForFormat);
  }
  // An iSCSI target acted on shared LU state (reservations) that another target has changed
  // since: refuse before anything is done, so it reloads and decides again.
  if ((req.hdr.flags & proto::flag::kLuFence) && req.hdr.lu_fence() != uint32_t(v.lu_generation)) {
    co_return Reply::Error(req.hdr, proto::res::kLuStateStale);
  }
  const auto start = std::chrono::steady_clock::now();
  const uint64_t bytes_in = req.data.size();
  Reply rep;
  try {
    rep = co_await info->handler(*this, req, client);
    rep.hdr.id = req.hdr.id;
    rep.hdr.opcode = req.hdr.opcode;
    if (rep.result() != proto::res::kSuccess)
      spdlog::debug("{} -> {}", info->name, proto::ResultText(rep.result()));
  } catch (const std::exception& e) {
    spdlog::error("{}: {} failed: {}", client.peer, info->name, e.what());
    rep = Reply::Error(req.hdr, proto::res::kSystemError);
  }
  if (metrics_) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    metrics_->Observe(req.hdr.opcode, bytes_in, rep.data.size(),
                      rep.result() != proto::res::kSuccess, took.count());
  }
  co_return rep;
}

}  // namespace kelpie::sheep
