#include "sheep/server.h"

#include <spdlog/spdlog.h>

#include <asio/experimental/concurrent_channel.hpp>

#include "sheep/asio_util.h"
#include "sheep/client_identity.h"
#include "sheep/sheep.h"

namespace kelpie::sheep {

using asio::use_awaitable;
using asio::ip::tcp;

namespace {

// Each message is a reply, or (last == true) the end of the connection.
using ReplyQueue = asio::experimental::concurrent_channel<void(asio::error_code, bool, Reply)>;
constexpr size_t kMaxInFlight = 256;  // requests of one connection being served at once

asio::awaitable<void> WriteReplies(std::shared_ptr<tcp::socket> sock,
                                   std::shared_ptr<ReplyQueue> q) {
  for (;;) {
    auto [ec, last, rep] = co_await q->async_receive(kTuple);
    if (ec || last) {
      asio::error_code ignored;
      sock->shutdown(tcp::socket::shutdown_both, ignored);
      sock->close(ignored);
      co_return;
    }
    rep.hdr.data_length = uint32_t(rep.data.size());
    const proto::HeaderBytes hb = proto::EncodeHeader(rep.hdr);
    std::array<asio::const_buffer, 2> bufs = {asio::buffer(hb), asio::buffer(rep.data)};
    auto [wec, n] = co_await asio::async_write(*sock, bufs, kTuple);
    if (wec) {
      asio::error_code ignored;
      sock->close(ignored);
      co_return;
    }
  }
}

// Version rule: public opcodes accept every version up to kProtoVer (tgtd sends 0 and 1),
// internal ones up to kPeerProtoVer.
bool VersionOk(const proto::Header& h) {
  return h.proto_ver <= (h.opcode < 0x80 ? proto::kProtoVer : proto::kPeerProtoVer);
}

asio::awaitable<void> ServeConnection(Sheep& sheep, std::shared_ptr<tcp::socket> sock) {
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

  auto replies = std::make_shared<ReplyQueue>(sock->get_executor(), kMaxInFlight);
  asio::co_spawn(sock->get_executor(), WriteReplies(sock, replies), asio::detached);
  auto in_flight = std::make_shared<std::atomic<size_t>>(0);
  std::string why = "client closed the connection";
  for (;;) {
    proto::HeaderBytes hb;
    auto [rec, n] = co_await asio::async_read(*sock, asio::buffer(hb), kTuple);
    if (rec) {
      if (rec != asio::error::eof || n != 0) {
        why = n == 0 ? rec.message() : fmt::format("truncated header ({} of 48 bytes)", n);
      }
      break;
    }
    Request req;
    req.hdr = proto::DecodeHeader(hb);
    const proto::Header& h = req.hdr;
    if (h.data_length > proto::kMaxDataLength) {
      why = fmt::format("data_length {} over the limit {} (opcode {:#x})", h.data_length,
                        proto::kMaxDataLength, h.opcode);
      co_await replies->async_send(asio::error_code{}, false,
                                   Reply::Error(h, proto::res::kInvalidParms), kTuple);
      break;
    }
    if (h.is_write() && h.data_length != 0) {
      req.data.resize(h.data_length);
      auto [dec, dn] = co_await asio::async_read(*sock, asio::buffer(req.data), kTuple);
      if (dec) {
        why = fmt::format("vanished mid-request ({} of {} data bytes, opcode {:#x})", dn,
                          h.data_length, h.opcode);
        break;
      }
    }
    if (!VersionOk(h)) {
      spdlog::warn("{}: protocol version {:#x} not supported (opcode {:#x})", client.peer,
                   h.proto_ver, h.opcode);
      co_await replies->async_send(asio::error_code{}, false,
                                   Reply::Error(h, proto::res::kVerMismatch), kTuple);
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
      co_await replies->async_send(asio::error_code{}, false, std::move(rep), kTuple);
      continue;
    }
    // Bound the requests a single connection may have in flight.
    asio::steady_timer wait(sock->get_executor());
    while (in_flight->load() >= kMaxInFlight) {
      wait.expires_after(std::chrono::milliseconds(1));
      co_await wait.async_wait(kTuple);
    }
    ++*in_flight;
    asio::co_spawn(
        sock->get_executor(),
        [&sheep, req = std::move(req), client, replies,
         in_flight]() mutable -> asio::awaitable<void> {
          Reply rep = co_await sheep.Dispatch(std::move(req), client);
          --*in_flight;
          co_await replies->async_send(asio::error_code{}, false, std::move(rep), kTuple);
        },
        asio::detached);
  }
  spdlog::debug("{}: connection closed: {}", client.peer, why);
  if (why != "client closed the connection")
    spdlog::info("{}: dropping connection: {}", client.peer, why);
  // Replies of requests still being served go out before the connection closes (bounded wait).
  asio::steady_timer wait(sock->get_executor());
  for (int i = 0; i < 30000 && in_flight->load() != 0; ++i) {
    wait.expires_after(std::chrono::milliseconds(1));
    co_await wait.async_wait(kTuple);
  }
  co_await replies->async_send(asio::error_code{}, true, Reply{}, kTuple);
  sheep.ClientGone(client.participant);
}

}  // namespace

asio::awaitable<void> Serve(Sheep& sheep, tcp::acceptor acceptor) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      spdlog::warn("accept: {}", ec.message());
      continue;
    }
    auto s = std::make_shared<tcp::socket>(std::move(sock));
    asio::co_spawn(acceptor.get_executor(), ServeConnection(sheep, s), asio::detached);
  }
}

}  // namespace kelpie::sheep
