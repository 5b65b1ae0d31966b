// SyncClient: one blocking TCP connection to a sheep, for tools (dog) and tests. Requests are
// sent one at a time; the reply's id is checked against the request's.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "proto/header.h"

namespace kelpie::client {

// A connection failed (refused, reset, timed out, or a malformed reply): the request's outcome is
// unknown.
class NetworkError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What an object request carries besides its object and range: request flags (proto::flag::kTgt
// for a lock participant's I/O) and, when set, the LU fence (proto::flag::kLuFence).
struct ObjTag {
  ObjTag(uint16_t f = 0, std::optional<uint32_t> fence = std::nullopt)  // NOLINT: from flags
      : flags(f), lu_fence(fence) {}
  void ApplyTo(proto::Header& h) const;

  uint16_t flags;
  std::optional<uint32_t> lu_fence;
};

class SyncClient {
 public:
  // Connects or throws NetworkError.
  SyncClient(const std::string& host, uint16_t port, int timeout_sec = 60);
  ~SyncClient();
  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  // Sends req (with `out` as its data when non-empty: CMD_WRITE is set) and returns the reply
  // header; the reply's data goes to *in. For a read, set req.data_length to the length wanted.
  proto::Header Request(proto::Header req, std::span<const uint8_t> out = {},
                        std::vector<uint8_t>* in = nullptr);

  // Object and JSON conveniences. Each returns the result code.
  uint32_t ReadObj(uint64_t oid, uint64_t offset, uint32_t len, std::vector<uint8_t>& out,
                   const ObjTag& tag = {});
  uint32_t WriteObj(uint64_t oid, uint64_t offset, std::span<const uint8_t> data,
                    bool create = false, uint64_t cow_oid = 0, const ObjTag& tag = {});
  // An admin opcode with an optional JSON body; the JSON reply text in *reply.
  uint32_t Admin(uint8_t opcode, const std::string& body, std::string* reply, uint64_t oid = 0);

  const std::string& endpoint() const { return endpoint_; }

 private:
  // Sends a then b in one system call when the socket takes them whole.
  void SendBoth(std::span<const uint8_t> a, std::span<const uint8_t> b);
  // One readv into a then b (at least one byte): how many bytes arrived.
  size_t RecvSome(std::span<uint8_t> a, std::span<uint8_t> b);
  void RecvAll(void* p, size_t n);

  int fd_ = -1;
  uint32_t next_id_ = 1;
  std::string endpoint_;
};

// name[256] + tag[256], the payload of GET_VDI_INFO / LOCK_VDI / DEL_VDI.
std::vector<uint8_t> VdiNamePayload(const std::string& name, const std::string& tag,
                                    bool with_tag = true);

}  // namespace kelpie::client
