// Peer operations: what one sheep asks of another about the copies it stores (read, write,
// create, remove, list). The handlers run on the storage sheep; the Peer* functions are the
// calling side, and call the local handler directly when the node is this sheep.
//
// Requests about one strip of an erasure-coded object name it by the object's oid, a non-zero
// copy_policy and the strip's ec_index (proto/ec.h StoreKeyOf); the store keeps it under its
// strip key. Object lists (kPeerObjList) list store keys.
//
// Every peer request carries the sender's epoch. A storage sheep refuses a request from another
// epoch (kOldNodeVer / kNewNodeVer) so a gateway never writes to a placement that is no longer
// current; the gateway then waits for the epochs to agree and retries.
#pragma once
#include <asio.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "cluster/node.h"
#include "sheep/request.h"

namespace kelpie::sheep {

class Sheep;

// Peer header flags, in the object view's reserved byte (offset 35).
namespace peer_flag {
inline constexpr uint8_t kWhole = 0x01;       // kPeerRead: the whole object, any length
inline constexpr uint8_t kAllowStale = 0x02;  // kPeerRead: may answer from a stale copy
inline constexpr uint8_t kNoEpochCheck = 0x04;
// kPeerCreateWrite: if the copy exists, write only the client's range (u32 offset at byte
// kKeepOffsetAt, u32 length at byte kKeepLengthAt) of the image instead of replacing the object.
inline constexpr uint8_t kKeepExisting = 0x08;
inline constexpr size_t kKeepOffsetAt = 36;
inline constexpr size_t kKeepLengthAt = 44;
// kPeerRead reply (same byte): the data is a stale copy, set aside for the u32 epoch at byte
// kStaleEpochAt (see stale_copies.h), so the reader can take the newest of several.
inline constexpr uint8_t kAnsweredStale = 0x10;
inline constexpr size_t kStaleEpochAt = 36;
}  // namespace peer_flag

asio::awaitable<Reply> HandlePeerRead(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandlePeerWrite(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandlePeerCreateWrite(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandlePeerRemove(Sheep& s, Request& req, const ClientInfo& c);
// Makes this sheep's write-back writes durable: those to objects of the VDIs listed in the
// payload (u32 vids, little endian), or of every VDI when it is empty.
asio::awaitable<Reply> HandlePeerFlush(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandlePeerObjList(Sheep& s, Request& req, const ClientInfo& c);
asio::awaitable<Reply> HandlePeerObjExists(Sheep& s, Request& req, const ClientInfo& c);
// Answers once this sheep has applied the cluster event at position `oid` of the total order
// (bounded wait): the barrier a gateway raises after changing lock states.
asio::awaitable<Reply> HandlePeerWaitSeq(Sheep& s, Request& req, const ClientInfo& c);

// Sends a peer request to `node` (directly to the local handler when it is this sheep).
asio::awaitable<Reply> PeerCall(Sheep& s, const cluster::NodeInfo& node, proto::Header hdr,
                                std::span<const uint8_t> data);

asio::awaitable<uint32_t> PeerListObjects(Sheep& s, const cluster::NodeInfo& node,
                                          std::vector<uint64_t>& out);
// A whole copy read for recovery or repair; stale_epoch is set when the peer answered from a
// stale copy.
struct WholeCopy {
  std::vector<uint8_t> data;
  std::optional<uint32_t> stale_epoch;
};
// Reads a whole stored copy (key: an oid, or a strip key, proto/ec.h), any epoch;
// kChecksumError if that copy failed its checksums (it must not be used).
asio::awaitable<uint32_t> PeerReadWhole(Sheep& s, const cluster::NodeInfo& node, uint64_t key,
                                        bool allow_stale, WholeCopy& out);
// Replaces node's copy of oid with `whole` (a verified copy read from elsewhere), at `epoch`.
asio::awaitable<uint32_t> PeerRewriteWhole(Sheep& s, const cluster::NodeInfo& node, uint32_t epoch,
                                           uint64_t oid, std::span<const uint8_t> whole);

}  // namespace kelpie::sheep
