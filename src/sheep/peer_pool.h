// PeerPool: requests from this sheep to other sheep (gateway forwarding, recovery), over pooled
// TCP connections. A connection carries one request at a time and goes back to the pool after a
// clean reply; any error closes it. A peer that cannot be reached answers res::kNetwork.
#pragma once
#include <asio.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "cluster/node.h"
#include "sheep/request.h"

namespace kelpie::sheep {

class PeerPool {
 public:
  explicit PeerPool(asio::io_context& io) : io_(io) {}
  asio::awaitable<Reply> Call(const cluster::NodeInfo& node, proto::Header hdr,
                              std::span<const uint8_t> data,
                              std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Drops idle connections to a node (it left the cluster).
  void Forget(const cluster::NodeInfo& node);

 private:
  using Socket = asio::ip::tcp::socket;
  std::unique_ptr<Socket> TakeIdle(const std::string& id);
  void GiveBack(const std::string& id, std::unique_ptr<Socket> s);

  asio::io_context& io_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<Socket>>> idle_;
};

}  // namespace kelpie::sheep
