// The gateway for data objects of erasure-coded VDIs (`-c D:P`). An object is D data strips and
// P parity strips (layout and code: erasure_code.h); strip i lives on the i-th node of the
// object's placement, under its strip key (proto/ec.h). When fewer than D+P zones are left, the
// strips past the last node have no home until nodes come back (recovery rebuilds them then).
//
//  - Read: the data strips' rows covering the range, in parallel; a strip that fails (node gone,
//    strip missing) is replaced by a parity strip, and the missing data is decoded. Any D strips
//    serve a read.
//  - Write: read-modify-write of the stripes it touches — read them (any D strips), overlay,
//  encode,
//    write those rows of every placed strip; acknowledged once every placed strip has them. The
//    writes of one object run one at a time: every gateway forwards them (kPeerEcWrite) to the
//    object's first strip holder, which runs them under the same per-object serialization as
//    COMPARE_AND_WRITE_OBJ (gateway.h Serialized), so data and parity stay consistent.
//  - Inode objects of EC VDIs stay replicated (IsErasureCoded is false for them).
#pragma once
#include <asio.hpp>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <vector>

#include "sheep/gateway.h"

namespace kelpie::sheep {

class Sheep;

// Whether a format or a new VDI may use (copies, copy_policy): policy 0 is replication; else a
// valid D:P with copies = D+P and at least D+P zones in the cluster now.
bool ValidCopyPolicy(Sheep& s, int copies, int policy);

// True for a data object of a VDI whose copy policy is erasure coding.
bool IsErasureCoded(Sheep& s, uint64_t oid);

asio::awaitable<uint32_t> EcRead(Sheep& s, uint64_t oid, uint64_t offset, uint32_t len,
                                 std::vector<uint8_t>& out);

enum class EcMode : uint8_t {
  kWrite = 0,   // overwrite part of an existing object (kNoObj if there is none)
  kCreate = 1,  // create the object (zeros except data); if it exists, write `keep` (or all)
};
// Forwards the write to the object's first strip holder, which serializes it (below).
asio::awaitable<uint32_t> EcWrite(Sheep& s, uint64_t oid, uint64_t offset,
                                  std::span<const uint8_t> data, EcMode mode,
                                  const ClientRange* keep = nullptr);
// The write itself; the caller has serialized the object's writes (Serialized on this sheep).
asio::awaitable<uint32_t> EcWriteSerialized(Sheep& s, uint64_t oid, uint64_t offset,
                                            std::span<const uint8_t> data, EcMode mode,
                                            const ClientRange* keep);
asio::awaitable<uint32_t> EcRemove(Sheep& s, uint64_t oid);
// dog vdi check of one EC object: reads every strip, rebuilds missing strips from any D, and
// recomputes parity from the data strips, rewriting parity that differs. The JSON answer of
// CHECK_OBJ (proto/admin.h), "missing"/"repaired" naming the nodes whose strip was fixed.
asio::awaitable<nlohmann::json> EcCheck(Sheep& s, uint64_t oid);

// kPeerEcWrite on the first strip holder: header oid/offset, obj.copies = EcMode, keep range at
// peer_flag::kKeepOffsetAt / kKeepLengthAt when byte 35 has kKeepExisting.
asio::awaitable<Reply> HandlePeerEcWrite(Sheep& s, Request& req, const ClientInfo& c);

}  // namespace kelpie::sheep
