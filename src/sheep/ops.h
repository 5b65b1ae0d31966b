// The op table: every opcode sheep understands, mapped to its handler — the daemon readable from
// one place (as sheepdog's sheep/ops.c). Handlers live in the files named per group.
#pragma once
#include <asio.hpp>
#include <cstdint>
#include <span>

#include "sheep/request.h"

namespace kelpie::sheep {

class Sheep;

using Handler = asio::awaitable<Reply> (*)(Sheep&, Request&, const ClientInfo&);

struct OpInfo {
  uint8_t opcode;
  const char* name;
  Handler handler;
  bool needs_format;  // answered WAIT_FOR_FORMAT before `dog cluster format`
};

// The entry for an opcode, or null for an unknown one.
const OpInfo* FindOp(uint8_t opcode);
// The whole table (metrics make one series per op).
std::span<const OpInfo> AllOps();

// gateway_ops.cc — client object I/O.
asio::awaitable<Reply> HandleReadObj(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleWriteObj(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleCreateAndWriteObj(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleRemoveObj(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleDiscardObj(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleFlushVdi(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleCompareAndWriteObj(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandlePeerCompareWrite(Sheep& s, Request& req, const ClientInfo& c);
// Shared LU state of exported VDIs (lu_state_ops.cc).
asio::awaitable<Reply> HandleLuStateGet(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleLuStateCas(Sheep& s, Request& req, const ClientInfo& c);

// vdi_ops.cc — VDIs and locks.
asio::awaitable<Reply> HandleNewVdi(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleDelVdi(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleGetVdiInfo(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleReadVdis(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleLockVdi(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleReleaseVdi(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleGetClusterDefault(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleLockList(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleLockUnlock(Sheep& s, Request& req, const ClientInfo& c);

// admin_ops.cc — cluster administration (dog).
asio::awaitable<Reply> HandleMakeFs(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleShutdown(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleStatCluster(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleGetNodeList(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleGetNodeInfo(Sheep& s, Request& req, const ClientInfo& c);
// Validates a client's name for itself (1-128 printable bytes); the server then makes it the
// connection's lock participant, so that a client's connections through one gateway are one
// participant whatever process they come from, and two clients of one process are two.
asio::awaitable<Reply> HandleSetClientId(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleRecoveryStatus(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleObjLocate(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandleCheckObj(Sheep& s, Request& req, const ClientInfo& c);

// A reply carrying a JSON body.
Reply JsonReply(const proto::Header& req, const std::string& body);

}  // namespace kelpie::sheep
