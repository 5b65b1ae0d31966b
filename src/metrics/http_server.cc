#include "metrics/http_server.h"

#include <asio/experimental/as_tuple.hpp>
#include <stdexcept>

namespace kelpie::metrics {

namespace {

using asio::ip::tcp;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr auto kRequestTimeout = std::chrono::seconds(10);  // for the whole connection
constexpr size_t kMaxDrainBytes = 1 << 20;

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    default:
      return "Error";
  }
}

HttpResponse Plain(int status, const std::string& text) {
  return {status, "text/plain; charset=utf-8", text + "\n"};
}

tcp::endpoint ParseEndpoint(const std::string& addr_port) {
  const size_t colon = addr_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr_port.size())
    throw std::runtime_error("metrics address '" + addr_port + "' is not ADDR:PORT");
  std::string host = addr_port.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string port_text = addr_port.substr(colon + 1);
  if (port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5 ||
      std::stoul(port_text) > 65535)
    throw std::runtime_error("metrics address '" + addr_port + "' has a bad port");
  asio::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("metrics address '" + addr_port + "': " + ec.message());
  return {address, uint16_t(std::stoul(port_text))};
}

}  // namespace

HttpResponse Respond(const std::string& head, const std::function<std::string()>& render) {
  const size_t eol = head.find("\r\n");
  const std::string line = head.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos || sp1 == 0 || sp2 == sp1 + 1 ||
      line.find(' ', sp2 + 1) != std::string::npos)
    return Plain(400, "malformed request line");
  const std::string method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                    version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return Plain(400, "unsupported version");
  for (char c : method) {
    if (c < 'A' || c > 'Z') return Plain(400, "malformed method");
  }
  if (target.empty() || target[0] != '/') return Plain(400, "malformed target");
  const std::string path = target.substr(0, target.find('?'));
  if (path != "/metrics") return Plain(404, "not found: try /metrics");
  if (method != "GET" && method != "HEAD") return Plain(405, "only GET");
  HttpResponse r{200, "text/plain; version=0.0.4; charset=utf-8", render()};
  if (method == "HEAD") r.body.clear();
  return r;
}

MetricsServer::MetricsServer(const std::string& addr_port, std::function<std::string()> render)
    : render_(std::move(render)), acceptor_(io_) {
  const tcp::endpoint ep = ParseEndpoint(addr_port);
  asio::error_code ec;
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen for metrics on " + addr_port + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, Accept(), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

MetricsServer::~MetricsServer() {
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

asio::awaitable<void> MetricsServer::Accept() {
  for (;;) {
    auto [ec, sock] = co_await acceptor_.async_accept(kTuple);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;  // e.g. out of descriptors: the next accept may succeed
    if (connections_ >= kMaxConnections) continue;  // closes it: too many at once
    ++connections_;
    asio::co_spawn(io_, Serve(std::make_shared<tcp::socket>(std::move(sock))),
                   [this](std::exception_ptr) { --connections_; });
  }
}

asio::awaitable<void> MetricsServer::Serve(std::shared_ptr<tcp::socket> sock_ptr) {
  tcp::socket& sock = *sock_ptr;
  // The request head must arrive within the timeout, whatever the peer sends.
  asio::steady_timer deadline(io_, kRequestTimeout);
  deadline.async_wait([sock_ptr](asio::error_code ec) {
    if (!ec) sock_ptr->close(ec);
  });
  std::string head;
  auto [ec, n] = co_await asio::async_read_until(sock, asio::dynamic_buffer(head, kMaxRequestBytes),
                                                 "\r\n\r\n", kTuple);
  if (ec && ec != asio::error::not_found) co_return;  // closed, reset or timed out
  const HttpResponse r =
      ec ? Plain(400, "request head too large") : Respond(head.substr(0, n), render_);
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + Reason(r.status) +
                    "\r\nContent-Type: " + r.content_type +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) +
                    "\r\nConnection: close\r\n\r\n" + r.body;
  auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(out), kTuple);
  if (wec) co_return;
  // Lingering close: closing with unread input would reset the connection and could destroy the
  // response before the client reads it; so finish sending, then drain (bounded by the deadline
  // and kMaxDrainBytes) until the client closes.
  asio::error_code ignored;
  sock.shutdown(tcp::socket::shutdown_send, ignored);
  std::vector<char> scratch(4096);
  for (size_t drained = 0; drained < kMaxDrainBytes;) {
    auto [rec, rn] = co_await sock.async_read_some(asio::buffer(scratch), kTuple);
    if (rec) break;
    drained += rn;
  }
  deadline.cancel();
}

}  // namespace kelpie::metrics
