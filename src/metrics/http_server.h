// MetricsServer: a small HTTP/1.1 listener that answers GET /metrics with the text a callback
// renders (Prometheus scrapes it). It runs on its own thread and io_context, so a slow or hostile
// scraper never takes time from the daemon's request threads; each connection serves one request
// and closes. Malformed requests get 400, other paths 404, other methods 405; a connection that
// sends nothing useful is dropped after a timeout. At most kMaxConnections are served at once.
#pragma once
// A standard header before asio: asio's allocation choice depends on libstdc++'s macros.
// clang-format off
#include <cstddef>
#include <asio.hpp>
// clang-format on
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace kelpie::metrics {

class MetricsServer {
 public:
  static constexpr size_t kMaxConnections = 32;
  static constexpr size_t kMaxRequestBytes = 8192;

  // Listens on "ADDR:PORT" ("[V6ADDR]:PORT" for IPv6); throws std::runtime_error with a message
  // naming the address when it cannot.
  MetricsServer(const std::string& addr_port, std::function<std::string()> render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  uint16_t port() const { return port_; }

 private:
  asio::awaitable<void> Accept();
  asio::awaitable<void> Serve(std::shared_ptr<asio::ip::tcp::socket> sock);

  std::function<std::string()> render_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  size_t connections_ = 0;  // touched only on io_'s thread
  std::thread thread_;
};

// The response to one raw request head (request line and headers, up to the blank line): status
// and body. Kept apart from the socket code so tests can feed it anything.
struct HttpResponse {
  int status;
  std::string content_type;
  std::string body;
};
HttpResponse Respond(const std::string& head, const std::function<std::string()>& render);

}  // namespace kelpie::metrics
