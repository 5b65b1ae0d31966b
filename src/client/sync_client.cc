#include "client/sync_client.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proto/constants.h"

namespace kelpie::client {

SyncClient::SyncClient(const std::string& host, uint16_t port, int timeout_sec)
    : endpoint_(host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                                    : fmt::format("{}:{}", host, port)) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res); rc != 0) {
    throw NetworkError(fmt::format("cannot resolve {}: {}", host, gai_strerror(rc)));
  }
  std::string last = "no address";
  for (addrinfo* a = res; a != nullptr && fd_ < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{timeout_sec, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      fd_ = fd;
    } else {
      last = std::strerror(errno);
      ::close(fd);
    }
  }
  ::freeaddrinfo(res);
  if (fd_ < 0) throw NetworkError(fmt::format("failed to connect to {}: {}", endpoint_, last));
}

SyncClient::~SyncClient() {
  if (fd_ >= 0) ::close(fd_);
}

void SyncClient::SendBoth(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  iovec iov[2] = {{const_cast<uint8_t*>(a.data()), a.size()},
                  {const_cast<uint8_t*>(b.data()), b.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = b.empty() ? 1 : 2;
  size_t left = a.size() + b.size();
  while (left > 0) {
    const ssize_t w = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      throw NetworkError(fmt::format("failed to send to {}: {}", endpoint_, std::strerror(errno)));
    left -= size_t(w);
    // Skip what went out (rare: a short send of a large request).
    size_t done = size_t(w);
    while (done > 0 && msg.msg_iovlen > 0) {
      const size_t take = std::min(done, msg.msg_iov[0].iov_len);
      msg.msg_iov[0].iov_base = static_cast<char*>(msg.msg_iov[0].iov_base) + take;
      msg.msg_iov[0].iov_len -= take;
      done -= take;
      if (msg.msg_iov[0].iov_len == 0) {
        ++msg.msg_iov;
        --msg.msg_iovlen;
      }
    }
  }
}

size_t SyncClient::RecvSome(std::span<uint8_t> a, std::span<uint8_t> b) {
  iovec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  for (;;) {
    const ssize_t r = ::readv(fd_, iov, b.empty() ? 1 : 2);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) throw NetworkError(fmt::format("{} closed the connection", endpoint_));
    if (r < 0)
      throw NetworkError(
          fmt::format("failed to receive from {}: {}", endpoint_, std::strerror(errno)));
    return size_t(r);
  }
}

void SyncClient::RecvAll(void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    const ssize_t r = ::recv(fd_, c, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) throw NetworkError(fmt::format("{} closed the connection", endpoint_));
    if (r < 0)
      throw NetworkError(
          fmt::format("failed to receive from {}: {}", endpoint_, std::strerror(errno)));
    c += r;
    n -= size_t(r);
  }
}

proto::Header SyncClient::Request(proto::Header req, std::span<const uint8_t> out,
                                  std::vector<uint8_t>* in) {
  req.id = next_id_++;
  if (!out.empty()) {
    req.flags |= proto::flag::kCmdWrite;
    req.data_length = uint32_t(out.size());
  }
  const proto::HeaderBytes hb = proto::EncodeHeader(req);
  SendBoth(hb, out);
  // One readv takes the reply's header and the data a read asked for (the usual reply, sent in
  // one piece); whatever is missing then is read to the end.
  std::vector<uint8_t> scratch;
  std::vector<uint8_t>& dst = in != nullptr ? *in : scratch;
  dst.resize(out.empty() ? std::min<size_t>(req.data_length, proto::kMaxDataLength) : 0);
  proto::HeaderBytes rb;
  const size_t got = RecvSome(rb, dst);
  if (got < rb.size()) RecvAll(rb.data() + got, rb.size() - got);
  const size_t have = got > rb.size() ? got - rb.size() : 0;
  const proto::Header rsp = proto::DecodeHeader(rb);
  if (rsp.id != req.id)
    throw NetworkError(fmt::format("{}: reply id {} for request {}", endpoint_, rsp.id, req.id));
  if (rsp.data_length > proto::kMaxDataLength || have > rsp.data_length)
    throw NetworkError(fmt::format("{}: reply too long", endpoint_));
  dst.resize(rsp.data_length);
  if (have < dst.size()) RecvAll(dst.data() + have, dst.size() - have);
  return rsp;
}

void ObjTag::ApplyTo(proto::Header& h) const {
  h.flags |= flags;
  if (lu_fence) {
    h.flags |= proto::flag::kLuFence;
    h.set_lu_fence(*lu_fence);
  }
}

uint32_t SyncClient::ReadObj(uint64_t oid, uint64_t offset, uint32_t len, std::vector<uint8_t>& out,
                             const ObjTag& tag) {
  proto::Header h;
  h.opcode = proto::op::kReadObj;
  tag.ApplyTo(h);
  h.set_oid(oid);
  h.set_offset(uint32_t(offset));
  h.data_length = len;
  return Request(h, {}, &out).result();
}

uint32_t SyncClient::WriteObj(uint64_t oid, uint64_t offset, std::span<const uint8_t> data,
                              bool create, uint64_t cow_oid, const ObjTag& tag) {
  proto::Header h;
  h.opcode = create ? proto::op::kCreateAndWriteObj : proto::op::kWriteObj;
  tag.ApplyTo(h);
  h.set_oid(oid);
  h.set_offset(uint32_t(offset));
  if (cow_oid != 0) {
    h.flags |= proto::flag::kCow;
    h.set_cow_oid(cow_oid);
  }
  return Request(h, data).result();
}

uint32_t SyncClient::Admin(uint8_t opcode, const std::string& body, std::string* reply,
                           uint64_t oid) {
  proto::Header h;
  h.opcode = opcode;
  h.set_oid(oid);
  std::vector<uint8_t> in;
  const auto* p = reinterpret_cast<const uint8_t*>(body.data());
  const proto::Header rsp = Request(h, std::span<const uint8_t>(p, body.size()), &in);
  if (reply != nullptr) reply->assign(in.begin(), in.end());
  return rsp.result();
}

std::vector<uint8_t> VdiNamePayload(const std::string& name, const std::string& tag,
                                    bool with_tag) {
  std::vector<uint8_t> b(with_tag ? 2 * proto::kMaxVdiLen : proto::kMaxVdiLen, 0);
  std::memcpy(b.data(), name.data(), std::min(name.size(), proto::kMaxVdiLen - 1));
  if (with_tag)
    std::memcpy(b.data() + proto::kMaxVdiLen, tag.data(),
                std::min(tag.size(), proto::kMaxVdiTagLen - 1));
  return b;
}

}  // namespace kelpie::client
