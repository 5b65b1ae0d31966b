// Sheepdog protocol v2 constants: opcodes, flags, result codes, object-space limits.
// These numbers are the wire contract with clients written elsewhere (tgtd, qemu, dog):
// never renumber them.
#pragma once
#include <cstdint>
#include <string_view>

namespace kelpie::proto {

// A request with proto_ver above this is answered VER_MISMATCH. tgtd sends 0x01 (and 0x00 on
// RELEASE_VDI), sheepdog's own tools 0x02: every value up to kProtoVer is accepted.
inline constexpr uint8_t kProtoVer = 0x02;
// Internal sheep-to-sheep requests (opcodes >= 0x80) carry this version.
inline constexpr uint8_t kPeerProtoVer = 0x0a;

inline constexpr size_t kHeaderSize = 48;
inline constexpr uint16_t kDefaultPort = 7000;

namespace op {
inline constexpr uint8_t kCreateAndWriteObj = 0x01;
inline constexpr uint8_t kReadObj = 0x02;
inline constexpr uint8_t kWriteObj = 0x03;
inline constexpr uint8_t kRemoveObj = 0x04;
inline constexpr uint8_t kDiscardObj = 0x05;
inline constexpr uint8_t kNewVdi = 0x11;
inline constexpr uint8_t kLockVdi = 0x12;
inline constexpr uint8_t kReleaseVdi = 0x13;
inline constexpr uint8_t kGetVdiInfo = 0x14;
inline constexpr uint8_t kReadVdis = 0x15;
inline constexpr uint8_t kFlushVdi = 0x16;
inline constexpr uint8_t kDelVdi = 0x17;
inline constexpr uint8_t kGetClusterDefault = 0x18;
// Sheepdog's administrative opcodes (used by dog); numbers as in sheepdog's internal_proto.h.
inline constexpr uint8_t kGetNodeList = 0x82;
inline constexpr uint8_t kMakeFs = 0x84;
inline constexpr uint8_t kShutdown = 0x85;
inline constexpr uint8_t kStatCluster = 0x87;
inline constexpr uint8_t kGetEpoch = 0x89;
inline constexpr uint8_t kGetNodeInfo = 0x8B;  // Kelpie: this node's store usage
// Kelpie's own admin/peer opcodes (0xA0..0xCF); the internal protocol is Kelpie's to design.
inline constexpr uint8_t kPeerRead = 0xA0;         // read a local copy
inline constexpr uint8_t kPeerWrite = 0xA1;        // overwrite part of a local copy
inline constexpr uint8_t kPeerCreateWrite = 0xA2;  // create a local copy (whole object)
inline constexpr uint8_t kPeerRemove = 0xA3;       // remove a local copy
inline constexpr uint8_t kPeerObjList = 0xA4;      // list the oids a node stores
inline constexpr uint8_t kPeerObjExists = 0xA5;    // does a node hold this oid (any epoch)
inline constexpr uint8_t kPeerWaitSeq = 0xA6;      // wait until a cluster event is applied
inline constexpr uint8_t kRecoveryStatus = 0xB0;   // dog node recovery
inline constexpr uint8_t kLockList = 0xB1;         // dog vdi lock list
inline constexpr uint8_t kLockUnlock = 0xB2;       // dog vdi lock unlock
inline constexpr uint8_t kSnapshotVdi = 0xB3;      // dog vdi snapshot (ordered, server side)
inline constexpr uint8_t kResizeVdi = 0xB4;        // dog vdi resize
inline constexpr uint8_t kObjLocate = 0xB5;        // dog vdi object: which nodes hold an oid
inline constexpr uint8_t kCheckObj = 0xB6;         // dog vdi check: compare and repair copies
inline constexpr uint8_t kSetClientId = 0xB7;  // name this connection's client (lock participant)
// Shared logical-unit state of a VDI exported by several iSCSI targets (reservations, unit
// attentions): an opaque versioned string kept in the cluster state, replaced by compare-and-swap.
inline constexpr uint8_t kLuStateGet = 0xB8;
inline constexpr uint8_t kLuStateCas = 0xB9;
// COMPARE AND WRITE of part of one data object, atomic against every other such request: the
// object's first copy holder serializes them.
inline constexpr uint8_t kCompareAndWriteObj = 0xBA;
inline constexpr uint8_t kPeerCompareWrite = 0xA7;  // the serializing step on that holder
// A write of an erasure-coded object, run (serialized) by its first strip holder.
inline constexpr uint8_t kPeerEcWrite = 0xA8;
// Make the write-back writes a sheep has applied durable (FLUSH_VDI fans it out to every node).
inline constexpr uint8_t kPeerFlush = 0xA9;
}  // namespace op

namespace flag {
inline constexpr uint16_t kCmdWrite = 0x01;
inline constexpr uint16_t kCow = 0x02;
inline constexpr uint16_t kCache = 0x04;
inline constexpr uint16_t kDirect = 0x08;
inline constexpr uint16_t kPiggyback = 0x10;
inline constexpr uint16_t kTgt = 0x20;
inline constexpr uint16_t kFwd = 0x40;
// Kelpie: the object request carries, in lu_fence, the cluster's LU-state generation the client
// acted on (an iSCSI target's reservation checks); the gateway refuses it with LU_STATE_STALE
// when any LU state changed since.
inline constexpr uint16_t kLuFence = 0x8000;
// Kelpie, on WRITE_OBJ: write-back. The write is acknowledged once it is applied on every copy
// (it survives the death of any process, as the copies' page cache does) and is made durable on
// disk by the next FLUSH_VDI of its VDI. Without it a write is durable before its ack. (CACHE
// 0x04, sheepdog's flag for its object cache, is ignored: other clients set it with other
// expectations.)
inline constexpr uint16_t kWriteBack = 0x4000;
}  // namespace flag

namespace res {
inline constexpr uint32_t kSuccess = 0x00;
inline constexpr uint32_t kUnknown = 0x01;
inline constexpr uint32_t kNoObj = 0x02;
inline constexpr uint32_t kEio = 0x03;
inline constexpr uint32_t kVdiExist = 0x04;
inline constexpr uint32_t kInvalidParms = 0x05;
inline constexpr uint32_t kSystemError = 0x06;
inline constexpr uint32_t kVdiLocked = 0x07;
inline constexpr uint32_t kNoVdi = 0x08;
inline constexpr uint32_t kNoBaseVdi = 0x09;
inline constexpr uint32_t kVdiRead = 0x0A;
inline constexpr uint32_t kVdiWrite = 0x0B;
inline constexpr uint32_t kBaseVdiRead = 0x0C;
inline constexpr uint32_t kBaseVdiWrite = 0x0D;
inline constexpr uint32_t kNoTag = 0x0E;
inline constexpr uint32_t kStartup = 0x0F;
inline constexpr uint32_t kVdiNotLocked = 0x10;
inline constexpr uint32_t kShutdown = 0x11;
inline constexpr uint32_t kNoMem = 0x12;
inline constexpr uint32_t kFullVdi = 0x13;
inline constexpr uint32_t kVerMismatch = 0x14;
inline constexpr uint32_t kNoSpace = 0x15;
inline constexpr uint32_t kWaitForFormat = 0x16;
inline constexpr uint32_t kWaitForJoin = 0x17;
inline constexpr uint32_t kJoinFailed = 0x18;
inline constexpr uint32_t kHalt = 0x19;
inline constexpr uint32_t kReadonly = 0x1A;
inline constexpr uint32_t kInodeInvalidated = 0x1D;
// Internal results (sheep to sheep), as in sheepdog's internal_proto.h.
inline constexpr uint32_t kOldNodeVer = 0x41;  // the peer has a newer epoch than the request
inline constexpr uint32_t kNewNodeVer = 0x42;  // the request has a newer epoch than the peer
inline constexpr uint32_t kNotFormatted = 0x43;
inline constexpr uint32_t kInvalidCtime = 0x44;
inline constexpr uint32_t kInvalidEpoch = 0x45;
inline constexpr uint32_t kNetwork = 0x86;          // Kelpie: a peer could not be reached
inline constexpr uint32_t kVersionConflict = 0x87;  // Kelpie: LU_STATE_CAS lost a race
inline constexpr uint32_t kMiscompare = 0x88;       // Kelpie: COMPARE_AND_WRITE found other bytes
inline constexpr uint32_t kLuStateStale = 0x8F;     // Kelpie: the request's LU fence is stale
// Kelpie, sheep to sheep only: a block of the local copy failed its checksum (bit rot or a torn
// write). The gateway reads another copy and repairs this one; a client never sees this code
// (it gets EIO when no copy is good).
inline constexpr uint32_t kChecksumError = 0x89;
}  // namespace res

// Human-readable text for a result code, as dog prints it.
std::string_view ResultText(uint32_t result);

// Lock types carried in vdi.type of LOCK_VDI / RELEASE_VDI.
inline constexpr uint32_t kLockNormal = 0;
inline constexpr uint32_t kLockShared = 1;

inline constexpr size_t kMaxVdiLen = 256;
inline constexpr size_t kMaxVdiTagLen = 256;
inline constexpr uint32_t kNrVdis = 1u << 24;
inline constexpr uint64_t kMaxDataObjs = 1ull << 20;
inline constexpr uint8_t kDefaultBlockSizeShift = 22;  // 4 MiB objects
inline constexpr uint8_t kMinBlockSizeShift = 20;
inline constexpr uint8_t kMaxBlockSizeShift = 31;
inline constexpr uint32_t kDefaultCopies = 3;
inline constexpr uint32_t kMaxCopies = 31;
// The largest data segment sheep accepts in one request: the whole inode object (12.6 MB),
// rounded up. Anything longer is answered INVALID_PARMS and the connection is closed.
inline constexpr uint32_t kMaxDataLength = 16u << 20;

}  // namespace kelpie::proto
