#include "sheep/server.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "proto/request_check.h"
#include "sheep/asio_util.h"
#include "sheep/client_identity.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

using asio::use_awaitable;
using asio::ip::tcp;

namespace {

constexpr size_t kMaxInFlight = 256;  // requests of one connection being served at once

// Writes a connection's replies as their requests finish. The request that finds no write under
// way writes its reply (and whatever others finish meanwhile) itself, on its own thread, so a
// reply costs no hand-off to another thread; one that finds a write under way leaves its reply
// queued for that writer. After a write error the socket is closed (the read loop then ends).
class ReplyWriter {
 public:
  explicit ReplyWriter(std::shared_ptr<tcp::socket> sock) : sock_(std::move(sock)) {}

  asio::awaitable<void> Send(Reply r) {
    bool write_now = false;
    {
      std::lock_guard lk(mu_);
      if (!failed_) {
        queue_.push_back(std::move(r));
        write_now = !writing_;
        writing_ = true;
      }
    }
    if (write_now) co_await WriteQueued();
  }

  // Closes the socket once no write is under way (waiting a bounded time for one to end).
  asio::awaitable<void> Close() {
    asio::steady_timer wait(sock_->get_executor());
    for (int i = 0; i < 30000 && Busy(); ++i) {
      wait.expires_after(std::chrono::milliseconds(1));
      co_await wait.async_wait(kTuple);
    }
    asio::error_code ignored;
    sock_->shutdown(tcp::socket::shutdown_both, ignored);
    sock_->close(ignored);
  }

 private:
  bool Busy() {
    std::lock_guard lk(mu_);
    return writing_;
  }

  asio::awaitable<void> WriteQueued() {
    for (;;) {
      std::vector<Reply> batch;
      {
        std::lock_guard lk(mu_);
        batch.swap(queue_);
        if (batch.empty()) writing_ = false;
      }
      if (batch.empty()) co_return;
      std::vector<proto::HeaderBytes> headers(batch.size());
      std::vector<asio::const_buffer> bufs;
      bufs.reserve(2 * batch.size());
      for (size_t i = 0; i < batch.size(); ++i) {
        batch[i].hdr.data_length = uint32_t(batch[i].data.size());
        headers[i] = proto::EncodeHeader(batch[i].hdr);
        bufs.push_back(asio::buffer(headers[i]));
        if (!batch[i].data.empty()) bufs.push_back(asio::buffer(batch[i].data));
      }
      auto [ec, n] = co_await asio::async_write(*sock_, bufs, kTuple);
      if (ec) {
        {
          std::lock_guard lk(mu_);
          failed_ = true;
          writing_ = false;
          queue_.clear();
        }
        asio::error_code ignored;
        sock_->close(ignored);
        co_return;
      }
    }
  }

  std::shared_ptr<tcp::socket> sock_;
  std::mutex mu_;
  std::vector<Reply> queue_;
  bool writing_ = false;
  bool failed_ = false;
};

// A deadline on a connection's reads: when it passes, the socket's read side is shut down, so
// the pending read ends (end of file) and the connection loop drops the peer, saying why. The
// generation keeps a deadline that fired just as it was re-armed from cutting the next read.
class ReadDeadline {
 public:
  explicit ReadDeadline(std::shared_ptr<tcp::socket> sock)
      : sock_(std::move(sock)), timer_(sock_->get_executor()) {}
  ~ReadDeadline() { Disarm(); }
  // seconds <= 0: no deadline.
  void Arm(int seconds) {
    const uint64_t gen = ++*gen_;
    timer_.cancel();
    if (seconds <= 0) return;
    timer_.expires_after(std::chrono::seconds(seconds));
    timer_.async_wait([sock = sock_, gen_now = gen_, expired = expired_, gen](asio::error_code ec) {
      if (ec || gen_now->load() != gen) return;
      *expired = true;
      asio::error_code ignored;
      sock->shutdown(tcp::socket::shutdown_receive, ignored);
    });
  }
  void Disarm() { Arm(0); }
  bool expired() const { return expired_->load(); }

 private:
  std::shared_ptr<tcp::socket> sock_;
  asio::steady_timer timer_;
  std::shared_ptr<std::atomic<uint64_t>> gen_ = std::make_shared<std::atomic<uint64_t>>(0);
  std::shared_ptr<std::atomic<bool>> expired_ = std::make_shared<std::atomic<bool>>(false);
};

// What a connection's requests being served hold: their count and their data bytes (request
// data, or the reply data a read asks for).
struct InFlight {
  std::atomic<size_t> requests{0};
  std::atomic<size_t> bytes{0};
};

// Waits until one more request costing `cost` bytes fits the connection's bounds (a request
// alone may always run, so one as large as the data limit is never stuck).
asio::awaitable<void> WaitForRoom(tcp::socket& sock, const InFlight& f, size_t cost,
                                  size_t max_bytes) {
  asio::steady_timer wait(sock.get_executor());
  while (f.requests.load() >= kMaxInFlight ||
         (f.requests.load() > 0 && f.bytes.load() + cost > max_bytes)) {
    wait.expires_after(std::chrono::milliseconds(1));
    co_await wait.async_wait(kTuple);
  }
}

// Bytes read from a connection ahead of the request being parsed, so that a request that arrived
// whole (the usual case) costs one recv, and a request already queued behind it none. (Waiting
// with async_wait instead re-arms epoll, a syscall per wait, and a queued request still takes a
// trip through the reactor.)
class RequestBuffer {
 public:
  static constexpr size_t kCapacity = 16 << 10;
  size_t size() const { return end_ - begin_; }
  const uint8_t* data() const { return buf_.get() + begin_; }
  void Consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Waits until the socket is readable and takes what it holds, until at least `want` bytes
  // (≤ kCapacity) are buffered.
  asio::awaitable<asio::error_code> FillTo(tcp::socket& sock, size_t want) {
    while (size() < want) {
      if (begin_ != 0) {
        std::memmove(buf_.get(), buf_.get() + begin_, size());
        end_ -= begin_;
        begin_ = 0;
      }
      auto [ec, n] =
          co_await sock.async_read_some(asio::buffer(buf_.get() + end_, kCapacity - end_), kTuple);
      if (ec) co_return ec;
      end_ += n;
    }
    co_return asio::error_code{};
  }

 private:
  std::unique_ptr<uint8_t[]> buf_{new uint8_t[kCapacity]};  // not zeroed: idle ones cost no RSS
  size_t begin_ = 0, end_ = 0;
};

asio::awaitable<void> ServeClient(Sheep& sheep, std::shared_ptr<tcp::socket> sock) {
  const Options& opts = sheep.options();
  ClientInfo client;
  asio::error_code ec;
  const auto remote = sock->remote_endpoint(ec);
  const std::string client_ip = ec ? "unknown" : remote.address().to_string();
  client.peer = ec ? "unknown" : fmt::format("{}:{}", client_ip, remote.port());
  const auto local = sock->local_endpoint(ec);
  client.participant =
      ParticipantId(sheep.self().id(), ec ? client.peer : IdentifyClient(remote, local));
  sheep.ClientConnected(client.participant);
  sock->set_option(tcp::no_delay(true), ec);

  auto replies = std::make_shared<ReplyWriter>(sock);
  auto in_flight = std::make_shared<InFlight>();
  ReadDeadline deadline(sock);
  std::string why = "client closed the connection";
  sock->non_blocking(true, ec);  // reads below take what is there and never block the thread
  RequestBuffer in;
  for (;;) {
    // Idle until a request's first byte; from then on the whole request is due within the
    // header timeout. The deadline is armed only when a read has to wait.
    if (in.size() == 0) {
      deadline.Arm(opts.idle_timeout_s);
      const asio::error_code iec = co_await in.FillTo(*sock, 1);
      if (iec) {
        if (deadline.expired()) {
          why = fmt::format("idle for {} s", opts.idle_timeout_s);
        } else if (iec != asio::error::eof) {
          why = iec.message();
        }
        break;
      }
    }
    if (in.size() < proto::kHeaderSize) {
      deadline.Arm(opts.header_timeout_s);
      const asio::error_code rec = co_await in.FillTo(*sock, proto::kHeaderSize);
      if (rec) {
        why = deadline.expired() ? fmt::format("header not complete within {} s ({} of 48 bytes)",
                                               opts.header_timeout_s, in.size())
                                 : fmt::format("truncated header ({} of 48 bytes)", in.size());
        break;
      }
    }
    deadline.Disarm();
    proto::HeaderBytes hb;
    std::memcpy(hb.data(), in.data(), hb.size());
    in.Consume(hb.size());
    Request req;
    req.hdr = proto::DecodeHeader(hb);
    const proto::Header& h = req.hdr;
    if (!proto::DataLengthAllowed(h)) {
      why = fmt::format("data_length {} over the limit {} (opcode {:#x})", h.data_length,
                        proto::kMaxDataLength, h.opcode);
      co_await replies->Send(Reply::Error(h, proto::res::kInvalidParms));
      break;
    }
    // Bound what this connection holds before its data is allocated.
    const size_t cost = h.data_length;
    co_await WaitForRoom(*sock, *in_flight, cost, opts.max_inflight_bytes);
    if (h.is_write() && h.data_length != 0) {
      req.data.resize(h.data_length);
      const size_t buffered = std::min<size_t>(in.size(), h.data_length);
      std::memcpy(req.data.data(), in.data(), buffered);
      in.Consume(buffered);
      if (buffered < h.data_length) {
        deadline.Arm(opts.header_timeout_s);
        auto [dec, dn] = co_await asio::async_read(
            *sock, asio::buffer(req.data.data() + buffered, h.data_length - buffered), kTuple);
        deadline.Disarm();
        if (dec) {
          why = fmt::format("{} ({} of {} data bytes, opcode {:#x})",
                            deadline.expired() ? fmt::format("request not complete within {} s",
                                                             opts.header_timeout_s)
                                               : std::string("vanished mid-request"),
                            buffered + dn, h.data_length, h.opcode);
          break;
        }
      }
    }
    if (!proto::VersionSupported(h)) {
      spdlog::warn("{}: protocol version {:#x} not supported (opcode {:#x})", client.peer,
                   h.proto_ver, h.opcode);
      co_await replies->Send(Reply::Error(h, proto::res::kVerMismatch));
      continue;
    }
    if (h.opcode == proto::op::kSetClientId) {
      // Renames this connection's participant; served in order, before any later request.
      const std::string name(req.data.begin(), req.data.end());
      Reply rep = co_await sheep.Dispatch(std::move(req), client);
      if (rep.result() == proto::res::kSuccess) {
        const std::string renamed = ParticipantId(sheep.self().id(), client_ip + "#" + name);
        if (renamed != client.participant) {
          sheep.ClientConnected(renamed);
          sheep.ClientGone(client.participant);
          client.participant = renamed;
        }
      }
      co_await replies->Send(std::move(rep));
      continue;
    }
    ++in_flight->requests;
    in_flight->bytes += cost;
    asio::co_spawn(
        sock->get_executor(),
        [&sheep, req = std::move(req), client, replies, in_flight,
         cost]() mutable -> asio::awaitable<void> {
          Reply rep = co_await sheep.Dispatch(std::move(req), client);
          co_await replies->Send(std::move(rep));
          in_flight->bytes -= cost;
          --in_flight->requests;
        },
        asio::detached);
  }
  deadline.Disarm();
  spdlog::debug("{}: connection closed: {}", client.peer, why);
  if (why != "client closed the connection")
    spdlog::info("{}: dropping connection: {}", client.peer, why);
  // Replies of requests still being served go out before the connection closes (bounded wait).
  asio::steady_timer wait(sock->get_executor());
  for (int i = 0; i < 30000 && in_flight->requests.load() != 0; ++i) {
    wait.expires_after(std::chrono::milliseconds(1));
    co_await wait.async_wait(kTuple);
  }
  co_await replies->Close();
  sheep.ClientGone(client.participant);
}

}  // namespace

asio::awaitable<void> ServeConnection(Sheep& sheep, std::shared_ptr<tcp::socket> sock) {
  co_await ServeClient(sheep, std::move(sock));
}

asio::awaitable<void> Serve(Sheep& sheep, tcp::acceptor acceptor) {
  const size_t max_connections = sheep.options().max_connections;
  auto open = std::make_shared<std::atomic<size_t>>(0);
  asio::steady_timer backoff(acceptor.get_executor());
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors (EMFILE) and the like: pause rather than spin on the error.
      spdlog::warn("accept: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(kTuple);
      continue;
    }
    if (open->load() >= max_connections) {
      asio::error_code ignored;
      const auto remote = sock.remote_endpoint(ignored);
      spdlog::warn("{}:{}: refusing connection: {} connections open (--max-connections)",
                   remote.address().to_string(), remote.port(), open->load());
      sock.close(ignored);
      continue;
    }
    ++*open;
    auto s = std::make_shared<tcp::socket>(std::move(sock));
    asio::co_spawn(
        acceptor.get_executor(),
        [&sheep, s, open]() -> asio::awaitable<void> {
          struct Count {
            std::shared_ptr<std::atomic<size_t>> open;
            ~Count() { --*open; }
          } counted{open};
          co_await ServeConnection(sheep, s);
        },
        asio::detached);
  }
}

}  // namespace kelpie::sheep
