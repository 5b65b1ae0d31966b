// The listener and client connections of a sheep. A connection reads requests one after another
// and runs each as its own coroutine, so requests on one connection are pipelined; replies are
// written in the order they complete, matched by the client through the request id.
//
// Malformed input never takes the daemon down: a request with a bad version or an unknown opcode
// gets an error reply; a data length over the limit, a truncated header or a client that vanishes
// closes that one connection, with a log line saying why. The limits of Options (connections,
// bytes in flight, header and idle timeouts) bound what one client can hold or stall.
#pragma once
#include <asio.hpp>

namespace kelpie::sheep {

class Sheep;

asio::awaitable<void> Serve(Sheep& sheep, asio::ip::tcp::acceptor acceptor);

// Serves one client connection until it closes (what Serve runs per accepted socket; the fuzz
// targets hand it one end of a socket pair).
asio::awaitable<void> ServeConnection(Sheep& sheep, std::shared_ptr<asio::ip::tcp::socket> sock);

}  // namespace kelpie::sheep
