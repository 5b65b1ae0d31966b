#include "sheep/client_identity.h"

#include <dirent.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace kelpie::sheep {

namespace {

// An endpoint as /proc/net/tcp{,6} prints it: the address's 32-bit words in host byte order as
// hex, then ':' and the port in hex.
std::string ProcNetFormat(const asio::ip::tcp::endpoint& ep) {
  std::string out;
  char buf[16];
  if (ep.address().is_v4()) {
    const auto b = ep.address().to_v4().to_bytes();
    uint32_t word;
    std::memcpy(&word, b.data(), 4);
    std::snprintf(buf, sizeof(buf), "%08X", word);
    out = buf;
  } else {
    const auto b = ep.address().to_v6().to_bytes();
    for (int i = 0; i < 16; i += 4) {
      uint32_t word;
      std::memcpy(&word, b.data() + i, 4);
      std::snprintf(buf, sizeof(buf), "%08X", word);
      out += buf;
    }
  }
  std::snprintf(buf, sizeof(buf), ":%04X", ep.port());
  return out + buf;
}

// The inode of the socket whose local end is `local` and remote end `remote`, or 0.
unsigned long SocketInode(const asio::ip::tcp::endpoint& local,
                          const asio::ip::tcp::endpoint& remote) {
  const std::string want_local = ProcNetFormat(local), want_remote = ProcNetFormat(remote);
  std::ifstream f(local.address().is_v4() ? "/proc/net/tcp" : "/proc/net/tcp6");
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string sl, l, r, st, queues, timer, retr, uid, timeout;
    unsigned long inode = 0;
    if (!(in >> sl >> l >> r >> st >> queues >> timer >> retr >> uid >> timeout >> inode)) continue;
    if (l == want_local && r == want_remote) return inode;
  }
  return 0;
}

// The pid of a process holding socket `inode` open, or -1.
long PidOfSocket(unsigned long inode) {
  const std::string target = "socket:[" + std::to_string(inode) + "]";
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return -1;
  long found = -1;
  while (dirent* d = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(d->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    const std::string fd_dir = "/proc/" + std::string(d->d_name) + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (fds == nullptr) continue;
    std::array<char, 64> link{};
    while (dirent* e = ::readdir(fds)) {
      if (e->d_name[0] == '.') continue;
      const std::string path = fd_dir + "/" + e->d_name;
      const ssize_t n = ::readlink(path.c_str(), link.data(), link.size() - 1);
      if (n > 0 && std::string_view(link.data(), size_t(n)) == target) {
        found = pid;
        break;
      }
    }
    ::closedir(fds);
    if (found > 0) break;
  }
  ::closedir(proc);
  return found;
}

}  // namespace

std::string IdentifyClient(const asio::ip::tcp::endpoint& remote,
                           const asio::ip::tcp::endpoint& local) {
  const std::string ip = remote.address().to_string();
  if (!remote.address().is_loopback()) return ip;
  // The client's socket: its local end is our remote end, and the other way round.
  const unsigned long inode = SocketInode(remote, local);
  if (inode == 0) return ip;
  const long pid = PidOfSocket(inode);
  return pid > 0 ? ip + "#pid" + std::to_string(pid) : ip;
}

}  // namespace kelpie::sheep
