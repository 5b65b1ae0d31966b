#include "client/pipelined_connection.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "client/connection_pool.h"
#include "proto/constants.h"

namespace kelpie::client {

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kReadBuffer = 256 * 1024;

}  // namespace

struct PipelinedConnection::Link : std::enable_shared_from_this<Link> {
  struct Pending {
    Done done;
    std::span<uint8_t> in;
    Clock::time_point since;
  };
  struct Outgoing {
    proto::HeaderBytes header;
    std::span<const uint8_t> data;
  };

  explicit Link(const asio::any_io_executor& ex) : socket(ex), timer(ex) {}

  tcp::socket socket;
  asio::steady_timer timer;
  bool ready = false;    // connected and identified: requests may go out
  bool writing = false;  // a writer is draining `queue`
  bool dead = false;
  std::unordered_map<uint32_t, Pending> pending;
  std::vector<Outgoing> queue, sending;
  std::vector<uint8_t> rbuf = std::vector<uint8_t>(kReadBuffer);
  size_t rpos = 0, rlen = 0;

  void Begin(std::string endpoint, std::string client_id, int timeout_sec) {
    asio::co_spawn(socket.get_executor(),
                   Run(shared_from_this(), std::move(endpoint), std::move(client_id)),
                   asio::detached);
    asio::co_spawn(socket.get_executor(), Watchdog(shared_from_this(), timeout_sec),
                   asio::detached);
  }

  // Starts a writer unless one runs; it first yields so that the requests of this turn of the
  // event loop leave together.
  void Kick() {
    if (!ready || writing || dead || queue.empty()) return;
    writing = true;
    asio::co_spawn(socket.get_executor(), Writer(shared_from_this()), asio::detached);
  }

  // Ends the link: every request in flight completes with kNetwork. Idempotent.
  void Fail(const std::string& why) {
    if (dead) return;
    dead = true;
    ready = false;
    asio::error_code ignored;
    socket.close(ignored);
    timer.cancel();
    queue.clear();
    auto failed = std::move(pending);
    pending.clear();
    if (!failed.empty()) {
      spdlog::warn("sheep connection: {}: {} request(s) in flight fail", why, failed.size());
    }
    for (auto& [id, p] : failed) {
      proto::Header rsp;
      rsp.id = id;
      rsp.set_result(proto::res::kNetwork);
      p.done(rsp);
    }
  }

  static asio::awaitable<void> Writer(std::shared_ptr<Link> self) {
    co_await asio::post(self->socket.get_executor(), asio::use_awaitable);
    std::vector<asio::const_buffer> bufs;
    while (!self->dead && !self->queue.empty()) {
      self->sending.swap(self->queue);
      self->queue.clear();
      bufs.clear();
      for (const Outgoing& o : self->sending) {
        bufs.emplace_back(o.header.data(), o.header.size());
        if (!o.data.empty()) bufs.emplace_back(o.data.data(), o.data.size());
      }
      auto [ec, n] = co_await asio::async_write(self->socket, bufs, kTuple);
      self->sending.clear();
      if (ec) {
        self->Fail(fmt::format("send failed: {}", ec.message()));
        break;
      }
    }
    self->writing = false;
  }

  static asio::awaitable<void> Watchdog(std::shared_ptr<Link> self, int timeout_sec) {
    const auto limit = std::chrono::seconds(timeout_sec);
    while (!self->dead) {
      self->timer.expires_after(std::chrono::seconds(1));
      co_await self->timer.async_wait(kTuple);
      if (self->dead) break;
      const auto now = Clock::now();
      bool overdue = false;
      for (const auto& [id, p] : self->pending) overdue = overdue || now - p.since > limit;
      if (overdue) self->Fail(fmt::format("no reply in {} s", timeout_sec));
    }
  }

  // Ensures n unread bytes are buffered; false (and the link failed) when the connection ends.
  asio::awaitable<bool> Fill(size_t n) {
    while (rlen - rpos < n) {
      if (rpos > 0) {
        std::memmove(rbuf.data(), rbuf.data() + rpos, rlen - rpos);
        rlen -= rpos;
        rpos = 0;
      }
      // Take all there is: a reply already queued costs no trip through the reactor (async_wait
      // would re-arm epoll each time, a syscall, and go through the reactor even then).
      auto [ec, got] = co_await socket.async_read_some(
          asio::buffer(rbuf.data() + rlen, rbuf.size() - rlen), kTuple);
      if (dead) co_return false;
      if (ec) {
        Fail(ec == asio::error::eof ? std::string("the sheep closed the connection")
                                    : fmt::format("receive failed: {}", ec.message()));
        co_return false;
      }
      rlen += got;
    }
    co_return true;
  }

  // Reads the header and data of one reply into the caller's buffer; false when the link failed.
  asio::awaitable<bool> ReadReply(proto::Header* rsp, Pending* p) {
    const bool got = co_await Fill(proto::kHeaderSize);
    if (!got) co_return false;
    *rsp = proto::DecodeHeader(
        std::span<const uint8_t, proto::kHeaderSize>(rbuf.data() + rpos, proto::kHeaderSize));
    rpos += proto::kHeaderSize;
    auto it = pending.find(rsp->id);
    if (it == pending.end()) {
      Fail(fmt::format("a reply (id {}) to no request", rsp->id));
      co_return false;
    }
    if (rsp->data_length > it->second.in.size()) {
      Fail(fmt::format("a reply of {} bytes to a request for {}", rsp->data_length,
                       it->second.in.size()));
      co_return false;
    }
    // Counted in flight (and failed with the others) until its data is in.
    const std::span<uint8_t> in = it->second.in;
    const size_t have = std::min<size_t>(rlen - rpos, rsp->data_length);
    if (have > 0) std::memcpy(in.data(), rbuf.data() + rpos, have);  // a write's reply: no data
    rpos += have;
    if (rpos == rlen) rpos = rlen = 0;
    if (have < rsp->data_length) {
      // The rest of a large reply goes straight where it belongs.
      auto [ec, n] = co_await asio::async_read(
          socket, asio::buffer(in.data() + have, rsp->data_length - have), kTuple);
      if (ec || dead) {
        Fail(fmt::format("receive failed: {}", ec ? ec.message() : "closed"));
        co_return false;
      }
    }
    auto done = pending.extract(rsp->id);
    *p = std::move(done.mapped());
    co_return true;
  }

  asio::awaitable<bool> Connect(const std::string& endpoint, const std::string& client_id) {
    std::string host;
    uint16_t port = 0;
    ParseEndpoint(endpoint, &host, &port);
    tcp::resolver resolver(socket.get_executor());
    auto [rec, addrs] = co_await resolver.async_resolve(host, std::to_string(port), kTuple);
    if (rec || dead) {
      Fail(fmt::format("cannot resolve {}: {}", host, rec.message()));
      co_return false;
    }
    auto [cec, at] = co_await asio::async_connect(socket, addrs, kTuple);
    if (cec || dead) {
      Fail(fmt::format("failed to connect to {}: {}", endpoint, cec.message()));
      co_return false;
    }
    asio::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    socket.non_blocking(true, ignored);
    if (client_id.empty()) co_return true;
    // The id first, answered before anything else leaves: the sheep runs a connection's
    // requests concurrently, and a request it ran before the id would be nobody's.
    proto::Header h;
    h.opcode = proto::op::kSetClientId;
    h.flags = proto::flag::kCmdWrite;
    h.data_length = uint32_t(client_id.size());
    const proto::HeaderBytes hb = proto::EncodeHeader(h);
    const std::array<asio::const_buffer, 2> bufs = {asio::buffer(hb), asio::buffer(client_id)};
    auto [wec, wn] = co_await asio::async_write(socket, bufs, kTuple);
    if (wec || dead) {
      Fail(fmt::format("send failed: {}", wec.message()));
      co_return false;
    }
    const bool got = co_await Fill(proto::kHeaderSize);
    if (!got) co_return false;
    const proto::Header rsp = proto::DecodeHeader(
        std::span<const uint8_t, proto::kHeaderSize>(rbuf.data() + rpos, proto::kHeaderSize));
    rpos += proto::kHeaderSize;
    const bool body = co_await Fill(rsp.data_length);  // its JSON reply, not needed
    if (!body) co_return false;
    rpos += rsp.data_length;
    if (rsp.result() != proto::res::kSuccess) {
      Fail(fmt::format("{} refused client id '{}': {}", endpoint, client_id,
                       proto::ResultText(rsp.result())));
      co_return false;
    }
    co_return true;
  }

  static asio::awaitable<void> Run(std::shared_ptr<Link> self, std::string endpoint,
                                   std::string client_id) {
    const bool connected = co_await self->Connect(endpoint, client_id);
    if (!connected) co_return;
    self->ready = true;
    self->Kick();
    for (;;) {
      proto::Header rsp;
      Pending p;
      const bool got = co_await self->ReadReply(&rsp, &p);
      if (!got) co_return;
      p.done(rsp);
      if (self->dead) co_return;  // the completion closed it
    }
  }
};

PipelinedConnection::PipelinedConnection(asio::any_io_executor executor, std::string endpoint,
                                         std::string client_id, int timeout_sec)
    : executor_(std::move(executor)),
      endpoint_(std::move(endpoint)),
      client_id_(std::move(client_id)),
      timeout_sec_(timeout_sec) {}

PipelinedConnection::~PipelinedConnection() { Close(); }

void PipelinedConnection::Close() {
  if (link_) link_->Fail("closed");
  link_.reset();
}

size_t PipelinedConnection::in_flight() const { return link_ ? link_->pending.size() : 0; }

void PipelinedConnection::Start(proto::Header req, std::span<const uint8_t> out,
                                std::span<uint8_t> in, Done done) {
  if (!link_ || link_->dead) {
    link_ = std::make_shared<Link>(executor_);
    link_->Begin(endpoint_, client_id_, timeout_sec_);
  }
  if (++next_id_ == 0) next_id_ = 1;
  req.id = next_id_;
  if (!out.empty()) {
    req.flags |= proto::flag::kCmdWrite;
    req.data_length = uint32_t(out.size());
  }
  link_->pending.emplace(req.id, Link::Pending{std::move(done), in, Clock::now()});
  link_->queue.push_back(Link::Outgoing{proto::EncodeHeader(req), out});
  link_->Kick();
}

}  // namespace kelpie::client
