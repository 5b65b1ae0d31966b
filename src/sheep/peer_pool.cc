#include "sheep/peer_pool.h"

#include <spdlog/spdlog.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

namespace kelpie::sheep {

using namespace asio::experimental::awaitable_operators;
using asio::use_awaitable;

namespace {
constexpr size_t kMaxIdlePerPeer = 128;

// Runs op under a deadline, throwing std::runtime_error(what) when it passes. `a || b` waits for
// one of the two to *succeed*: an op that fails at once (connection refused or reset by a peer
// that died) would wait out the whole deadline. So op's failure is caught inside and rethrown
// here as soon as it happens.
template <typename Op>
asio::awaitable<void> WithDeadline(asio::io_context& io, std::chrono::milliseconds limit,
                                   const char* what, Op op) {
  std::exception_ptr failed;
  auto guarded = [&]() -> asio::awaitable<void> {
    try {
      co_await op();
    } catch (...) {
      failed = std::current_exception();
    }
  };
  asio::steady_timer t(io, limit);
  // The timer's wait answers its cancellation (the usual end) with an error code, not an
  // exception: a throw per call was ~1 % of a gateway's CPU.
  auto r = co_await (guarded() || t.async_wait(asio::experimental::as_tuple(use_awaitable)));
  if (failed) std::rethrow_exception(failed);
  if (r.index() != 0) throw std::runtime_error(what);
}

}  // namespace

std::unique_ptr<PeerPool::Socket> PeerPool::TakeIdle(const std::string& id) {
  std::lock_guard lk(mu_);
  auto& v = idle_[id];
  if (v.empty()) return nullptr;
  auto s = std::move(v.back());
  v.pop_back();
  return s;
}

void PeerPool::GiveBack(const std::string& id, std::unique_ptr<Socket> s) {
  std::lock_guard lk(mu_);
  auto& v = idle_[id];
  if (v.size() < kMaxIdlePerPeer) v.push_back(std::move(s));
}

void PeerPool::Forget(const cluster::NodeInfo& node) {
  std::lock_guard lk(mu_);
  idle_.erase(node.id());
}

asio::awaitable<Reply> PeerPool::Call(const cluster::NodeInfo& node, proto::Header hdr,
                                      std::span<const uint8_t> data,
                                      std::chrono::milliseconds timeout) {
  const std::string id = node.id();
  hdr.data_length = (hdr.flags & proto::flag::kCmdWrite) ? uint32_t(data.size()) : hdr.data_length;
  const proto::HeaderBytes hb = proto::EncodeHeader(hdr);
  // A pooled connection may have been closed by the peer meanwhile: one retry on a fresh one.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Socket> sock = attempt == 0 ? TakeIdle(id) : nullptr;
    const bool pooled = sock != nullptr;
    try {
      if (!sock) {
        sock = std::make_unique<Socket>(io_);
        asio::ip::tcp::endpoint ep(asio::ip::make_address(node.addr), node.port);
        co_await WithDeadline(io_, std::chrono::seconds(5), "connect timed out",
                              [&]() { return sock->async_connect(ep, use_awaitable); });
        sock->set_option(asio::ip::tcp::no_delay(true));
      }
      std::array<asio::const_buffer, 2> out = {asio::buffer(hb),
                                               asio::buffer(data.data(), data.size())};
      const size_t out_len = (hdr.flags & proto::flag::kCmdWrite) ? 2 : 1;
      Reply rep;
      proto::HeaderBytes rb;
      auto io = [&]() -> asio::awaitable<void> {
        co_await asio::async_write(*sock, std::span(out.data(), out_len), use_awaitable);
        // Once the reply starts to arrive, one recv takes its header and the data a read asked
        // for (the usual reply); whatever is missing then is read to the end.
        rep.data.resize((hdr.flags & proto::flag::kCmdWrite) ? 0 : hdr.data_length);
        std::array<asio::mutable_buffer, 2> in = {asio::buffer(rb), asio::buffer(rep.data)};
        const size_t got = co_await sock->async_read_some(in, use_awaitable);
        if (got < rb.size())
          co_await asio::async_read(*sock, asio::buffer(rb.data() + got, rb.size() - got),
                                    use_awaitable);
        const size_t have = got > rb.size() ? got - rb.size() : 0;
        rep.hdr = proto::DecodeHeader(rb);
        if (rep.hdr.data_length > proto::kMaxDataLength) throw std::runtime_error("reply too long");
        if (have > rep.hdr.data_length) throw std::runtime_error("reply longer than announced");
        rep.data.resize(rep.hdr.data_length);
        if (have < rep.data.size())
          co_await asio::async_read(
              *sock, asio::buffer(rep.data.data() + have, rep.data.size() - have), use_awaitable);
      };
      co_await WithDeadline(io_, timeout, "request timed out", io);
      GiveBack(id, std::move(sock));
      co_return rep;
    } catch (const std::exception& e) {
      if (pooled) continue;
      spdlog::warn("peer {}: opcode {:#x} failed: {}", id, hdr.opcode, e.what());
      break;
    }
  }
  co_return Reply::Error(hdr, proto::res::kNetwork);
}

}  // namespace kelpie::sheep
