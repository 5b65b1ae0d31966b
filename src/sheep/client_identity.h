// ClientIdentity: which client process a connection belongs to, so that the several connections
// one client opens (tgtd opens one per worker thread) are one lock participant, and two clients
// behind one gateway are two.
//
// On loopback the kernel tells: the connection's socket inode is found in /proc/net/tcp{,6} and
// then in some process's /proc/PID/fd. Otherwise (another host, or no permission to look) the
// client is its remote IP address: two clients on one remote host through one gateway then share
// a participant, which is safe for locks (they release together) but merges their coherence state.
#pragma once
#include <asio.hpp>
#include <string>

namespace kelpie::sheep {

// "IP#pidN" when the process is found, else "IP".
std::string IdentifyClient(const asio::ip::tcp::endpoint& remote,
                           const asio::ip::tcp::endpoint& local);

}  // namespace kelpie::sheep
