// Gateway: how any sheep serves a client's object request. It places the object on the ring of
// the current epoch and forwards to the sheep holding its copies: a write goes to every copy and
// succeeds only when every copy of the current placement has it; a read is served by one copy,
// falling back to the others; a copy that fails its checksums is skipped and then rewritten from
// the copy that served the read. When the placement's epoch moves under a request (a node joined or
// left), the request is retried on the new placement.
#pragma once
#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "cluster/node.h"
#include "sheep/request.h"

namespace kelpie::sheep {

class Sheep;
struct View;

// Reads len bytes at offset of oid into out (resized). Returns a proto::res code.
asio::awaitable<uint32_t> GatewayRead(Sheep& s, uint64_t oid, uint64_t offset, uint32_t len,
                                      std::vector<uint8_t>& out);
// Overwrites part of an existing object on every copy. write_back: applied on every copy, made
// durable by the next flush (proto::flag::kWriteBack); erasure-coded objects are always synced.
asio::awaitable<uint32_t> GatewayWrite(Sheep& s, uint64_t oid, uint64_t offset,
                                       std::span<const uint8_t> data, bool write_back = false);
// Makes every write-back write to objects of VDI vid durable on every node of the cluster.
asio::awaitable<uint32_t> GatewayFlush(Sheep& s, uint32_t vid);
// The bytes of a client's CREATE_AND_WRITE within the object image a gateway creates.
struct ClientRange {
  uint32_t offset = 0;
  uint32_t length = 0;
};
// Creates (or replaces) the object on every copy: obj_size bytes, zeros except data at offset.
// With `keep_existing`, a copy that already exists (another client created it first — two targets
// copying-on-write the same index at once) keeps its bytes and gets only that range of the image,
// so one client's create never undoes another's acknowledged write.
asio::awaitable<uint32_t> GatewayCreate(Sheep& s, uint64_t oid, uint64_t obj_size, uint64_t offset,
                                        std::span<const uint8_t> data,
                                        const ClientRange* keep_existing = nullptr);
// Removes every copy.
asio::awaitable<uint32_t> GatewayRemove(Sheep& s, uint64_t oid);

// Rewrites the copies of oid on `bad` (they failed their checksums) from the copy on `good`,
// read whole and verified there; logs each repair. Returns kSuccess if every bad copy was
// rewritten.
asio::awaitable<uint32_t> RepairCopies(Sheep& s, uint32_t epoch, uint64_t oid,
                                       const cluster::NodeInfo& good,
                                       const std::vector<cluster::NodeInfo>& bad);

// Size of an object: the VDI's object size for data objects, the full inode size for inodes.
uint64_t ObjectSize(Sheep& s, uint64_t oid);

// --- Building blocks shared by the replicated and the erasure-coded gateway (ec_gateway.h).

// The nodes holding oid's copies (or strips, in strip order) in view v.
std::vector<cluster::NodeInfo> PlacementOf(Sheep& s, const View& v, uint64_t oid);
// Sends hdrs[i] with data[i] to nodes[i], all at once; the replies in node order.
asio::awaitable<std::vector<Reply>> CallEach(Sheep& s, const std::vector<cluster::NodeInfo>& nodes,
                                             std::vector<proto::Header> hdrs,
                                             std::vector<std::span<const uint8_t>> data);
// The first retryable result among replies (epoch disagreement, unreachable node), else the
// first error, else kSuccess.
uint32_t WorstResult(const std::vector<Reply>& replies);
// Runs attempt(view) on the current view until its result is not an epoch disagreement or an
// unreachable node, waiting for the epoch to move in between (60 s at most, then kEio). Also
// waits while this sheep may not serve, and answers WAIT_FOR_FORMAT / HALT without a ring.
asio::awaitable<uint32_t> RetryAcrossEpochs(
    Sheep& s, uint64_t oid, uint8_t opcode,
    std::function<asio::awaitable<uint32_t>(const View&)> attempt);
// Runs fn while this sheep marks oid busy: callers with the same oid run one at a time (waiting
// up to 30 s for their turn, then kSystemError). The object's first copy holder is where every
// gateway sends such requests (ForwardToFirstHolder), so they are serialized cluster-wide.
asio::awaitable<uint32_t> Serialized(Sheep& s, uint64_t oid,
                                     std::function<asio::awaitable<uint32_t>()> fn);
// Sends a peer request about h.oid() to the holder of its first copy, retrying while that node
// is unreachable (its successor takes over once membership moves on).
asio::awaitable<Reply> ForwardToFirstHolder(Sheep& s, proto::Header h,
                                            std::span<const uint8_t> data);

}  // namespace kelpie::sheep
