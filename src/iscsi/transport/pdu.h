// iSCSI PDUs (RFC 7143 §11): the 48-byte Basic Header Segment with big-endian field accessors,
// opcodes and flag bits, the PDU as it travels (BHS, AHS, data segment), framing onto the wire
// and the CRC32C header/data digests (§13.1).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kelpie::iscsi {

namespace op {
// Initiator opcodes.
inline constexpr uint8_t kNopOut = 0x00;
inline constexpr uint8_t kScsiCommand = 0x01;
inline constexpr uint8_t kTaskMgmtRequest = 0x02;
inline constexpr uint8_t kLoginRequest = 0x03;
inline constexpr uint8_t kTextRequest = 0x04;
inline constexpr uint8_t kDataOut = 0x05;
inline constexpr uint8_t kLogoutRequest = 0x06;
inline constexpr uint8_t kSnack = 0x10;
// Target opcodes.
inline constexpr uint8_t kNopIn = 0x20;
inline constexpr uint8_t kScsiResponse = 0x21;
inline constexpr uint8_t kTaskMgmtResponse = 0x22;
inline constexpr uint8_t kLoginResponse = 0x23;
inline constexpr uint8_t kTextResponse = 0x24;
inline constexpr uint8_t kDataIn = 0x25;
inline constexpr uint8_t kLogoutResponse = 0x26;
inline constexpr uint8_t kR2T = 0x31;
inline constexpr uint8_t kAsyncMessage = 0x32;
inline constexpr uint8_t kReject = 0x3f;
}  // namespace op

// Flag bits of BHS byte 1.
namespace flag {
inline constexpr uint8_t kFinal = 0x80;
inline constexpr uint8_t kRead = 0x40;            // SCSI Command
inline constexpr uint8_t kWrite = 0x20;           // SCSI Command
inline constexpr uint8_t kContinue = 0x40;        // Login / Text
inline constexpr uint8_t kTransit = 0x80;         // Login
inline constexpr uint8_t kStatus = 0x01;          // Data-In
inline constexpr uint8_t kResidOverflow = 0x04;   // Data-In / SCSI Response "O"
inline constexpr uint8_t kResidUnderflow = 0x02;  // Data-In / SCSI Response "U"
}  // namespace flag

// Reject reasons (§11.17.1).
namespace reject {
inline constexpr uint8_t kDataDigestError = 0x02;
inline constexpr uint8_t kSnackReject = 0x03;
inline constexpr uint8_t kProtocolError = 0x04;
inline constexpr uint8_t kCommandNotSupported = 0x05;
inline constexpr uint8_t kImmediateCommandReject = 0x06;
inline constexpr uint8_t kTaskInProgress = 0x07;
inline constexpr uint8_t kInvalidPduField = 0x09;
}  // namespace reject

inline constexpr uint32_t kReservedTag = 0xffffffff;  // "no task" ITT / TTT
inline constexpr size_t kBhsLength = 48;

// Big-endian helpers over raw bytes.
inline uint16_t GetBe16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t GetBe24(const uint8_t* p) {
  return uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2];
}
inline uint32_t GetBe32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline uint64_t GetBe64(const uint8_t* p) { return uint64_t(GetBe32(p)) << 32 | GetBe32(p + 4); }
inline void PutBe16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8), p[1] = uint8_t(v); }
inline void PutBe24(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 16), p[1] = uint8_t(v >> 8), p[2] = uint8_t(v);
}
inline void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24), p[1] = uint8_t(v >> 16), p[2] = uint8_t(v >> 8), p[3] = uint8_t(v);
}
inline void PutBe64(uint8_t* p, uint64_t v) {
  PutBe32(p, uint32_t(v >> 32)), PutBe32(p + 4, uint32_t(v));
}

// One PDU. The BHS fields common to every PDU have accessors; PDU-specific fields are read and
// written by byte offset (the layouts table of iscsi.md §1) through u32()/set_u32() etc.
struct Pdu {
  std::array<uint8_t, kBhsLength> bhs{};
  std::vector<uint8_t> ahs;   // TotalAHSLength × 4 bytes (received only; never sent)
  std::vector<uint8_t> data;  // the data segment without padding

  uint8_t opcode() const { return bhs[0] & 0x3f; }
  bool immediate() const { return bhs[0] & 0x40; }
  uint8_t flags() const { return bhs[1]; }
  bool final_bit() const { return bhs[1] & flag::kFinal; }
  uint32_t data_length() const { return GetBe24(&bhs[5]); }  // as declared in the BHS
  uint32_t ahs_length() const { return bhs[4] * 4u; }
  uint64_t lun() const { return GetBe64(&bhs[8]); }
  uint32_t itt() const { return GetBe32(&bhs[16]); }
  uint16_t u16(size_t off) const { return GetBe16(&bhs[off]); }
  uint32_t u32(size_t off) const { return GetBe32(&bhs[off]); }

  // A target PDU with opcode and flags set, ITT as given, everything else zero.
  static Pdu Make(uint8_t opcode, uint8_t flags, uint32_t itt);
  void set_flags(uint8_t f) { bhs[1] = f; }
  void set_lun(uint64_t lun) { PutBe64(&bhs[8], lun); }
  void set_u8(size_t off, uint8_t v) { bhs[off] = v; }
  void set_u16(size_t off, uint16_t v) { PutBe16(&bhs[off], v); }
  void set_u32(size_t off, uint32_t v) { PutBe32(&bhs[off], v); }
  // Sets data and the BHS DataSegmentLength from it.
  void set_data(std::vector<uint8_t> d);
};

// Common field offsets.
namespace off {
inline constexpr size_t kTtt = 20;        // Target Transfer Tag (NOP, Text, Data, R2T)
inline constexpr size_t kEdtl = 20;       // SCSI Command Expected Data Transfer Length
inline constexpr size_t kCmdSn = 24;      // initiator PDUs
inline constexpr size_t kExpStatSn = 28;  // initiator PDUs
inline constexpr size_t kStatSn = 24;     // target PDUs
inline constexpr size_t kExpCmdSn = 28;   // target PDUs
inline constexpr size_t kMaxCmdSn = 32;   // target PDUs
inline constexpr size_t kDataSn = 36;     // Data-In / Data-Out; R2TSN in R2T
inline constexpr size_t kBufferOffset = 40;
inline constexpr size_t kResidual = 44;  // SCSI Response / Data-In residual; R2T desired length
inline constexpr size_t kCdb = 32;       // SCSI Command CDB (16 bytes)
}  // namespace off

// CRC32C (Castagnoli) as iSCSI uses it: init ~0, final xor ~0. The wire form is the value
// least-significant byte first (AppendDigest / DigestMatches).
uint32_t Crc32c(std::span<const uint8_t> bytes);
uint32_t Crc32cContinue(uint32_t crc_state, std::span<const uint8_t> bytes);  // raw, no xor
void AppendDigest(std::vector<uint8_t>& out, uint32_t crc);
uint32_t DigestFromWire(const uint8_t* p);

inline uint32_t PaddedLength(uint32_t n) { return (n + 3) & ~3u; }

// The wire bytes of a target PDU (no AHS): BHS, [header digest], data + padding, [data digest].
std::vector<uint8_t> EncodePdu(const Pdu& pdu, bool header_digest, bool data_digest);

// Digest of a received data segment (data plus zero padding to a multiple of four).
uint32_t DataDigest(std::span<const uint8_t> data);

// Name of an opcode for logs, e.g. "SCSI Command" (hex for unknown ones).
std::string OpcodeName(uint8_t opcode);

// Serial number arithmetic (RFC 1982, 32 bits) used for CmdSN/StatSN comparisons.
inline bool SnLess(uint32_t a, uint32_t b) { return a != b && uint32_t(b - a) < 0x80000000u; }
inline bool SnLessEq(uint32_t a, uint32_t b) { return a == b || SnLess(a, b); }

}  // namespace kelpie::iscsi
