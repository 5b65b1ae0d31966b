// PipelinedConnection: one asynchronous connection to a sheep on an asio executor, with many
// requests in flight at once (the sheep answers each by its id, in any order). It is the data
// path of kelpie-iscsi's I/O thread: a command's object request goes out and its reply comes back
// on that thread, with no hand-off to a worker and back. Requests started in one turn of the event
// loop leave in one gathered write; replies are read in large chunks, the data of a big one
// straight into its caller's buffer.
//
// Single-threaded: call it from the executor's thread only; completions run there too. The first
// request connects (and names the process with SET_CLIENT_ID before anything else is sent, so it
// is the same lock participant as the process's other connections to that sheep). When the
// connection fails, or a request stays unanswered for `timeout_sec`, every request in flight
// completes with proto::res::kNetwork (outcome unknown) and the next Start connects again.
#pragma once
#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "proto/header.h"

namespace kelpie::client {

class PipelinedConnection {
 public:
  // The reply header (result(), data_length: the bytes placed in the caller's buffer).
  using Done = std::function<void(const proto::Header& rsp)>;

  PipelinedConnection(asio::any_io_executor executor, std::string endpoint, std::string client_id,
                      int timeout_sec = 30);
  // Fails the requests in flight (kNetwork) before it returns.
  ~PipelinedConnection();
  PipelinedConnection(const PipelinedConnection&) = delete;
  PipelinedConnection& operator=(const PipelinedConnection&) = delete;

  // Sends req (its id is assigned here) with `out` as its data (CMD_WRITE and data_length are set
  // when out is not empty); the reply's data goes to `in`, which bounds it (set req.data_length
  // to in.size() for a read). Both buffers must stay valid until done runs. done runs later, never
  // inside Start.
  void Start(proto::Header req, std::span<const uint8_t> out, std::span<uint8_t> in, Done done);
  // Closes the connection now: requests in flight complete with kNetwork.
  void Close();

  const std::string& endpoint() const { return endpoint_; }
  size_t in_flight() const;

 private:
  struct Link;  // one TCP connection's life
  asio::any_io_executor executor_;
  std::string endpoint_, client_id_;
  int timeout_sec_;
  uint32_t next_id_ = 1;
  std::shared_ptr<Link> link_;
};

}  // namespace kelpie::client
