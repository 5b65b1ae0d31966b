// Coherence: the gateway's side of MSI inode coherence for shared VDI locks (the states live in
// LockTable, see lock_table.h). Every sheep is a gateway, so the rules hold whichever sheep a
// target talks to:
//  - CheckCoherence refuses a TGT request from an Invalidated participant that could depend on
//    its cached inode (an object of the locked VDI or of an ancestor; a short read of the inode,
//    as tgtd's 1-byte probe) with INODE_INVALIDATED. Header reads and index writes always pass:
//    tgtd needs the first to follow a snapshot, and would lose its update if the second failed.
//  - RefreshRead serves a full inode read and then makes the reader Shared, unless an index
//    write was ordered after the read began (the reader then stays Invalidated).
//  - IndexUpdate brackets an update of the inode's index table: before it, the writer becomes
//    Modified and the others Invalidated (when that changes anything); after it, the same again,
//    which also catches a refresh that read the old table meanwhile. Each step is an ordered
//    cluster operation followed by a barrier: every sheep has applied it before the write goes
//    on, so no gateway serves the old table to an Invalidated participant after the write is
//    acknowledged.
#pragma once
#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "proto/header.h"
#include "sheep/request.h"

namespace kelpie::sheep {

class Sheep;

uint32_t CheckCoherence(Sheep& s, const proto::Header& h, const ClientInfo& c);

// Is this READ_OBJ a full inode refresh (offset 0, header and index table)?
bool IsRefreshRead(const proto::Header& h);
// Does a write of len bytes at offset of oid touch an inode's index table?
bool TouchesIndex(uint64_t oid, uint64_t offset, uint64_t len);

asio::awaitable<uint32_t> RefreshRead(Sheep& s, const proto::Header& h, const ClientInfo& c,
                                      std::vector<uint8_t>& out);

// Runs `update` (which changes vid's index table) between the two coherence steps, when `c` is a
// participant of a shared lock on vid; otherwise just runs it.
asio::awaitable<uint32_t> IndexUpdate(Sheep& s, uint32_t vid, const ClientInfo& c,
                                      std::function<asio::awaitable<uint32_t>()> update);

// Waits until every member of the cluster has applied the cluster event at `seq` (or has left).
asio::awaitable<uint32_t> ClusterBarrier(Sheep& s, uint64_t seq);

}  // namespace kelpie::sheep
