#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "store/object_store.h"

namespace kelpie::store {

namespace fs = std::filesystem;

MetaStore::MetaStore(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }

bool MetaStore::Put(const std::string& name, std::span<const uint8_t> bytes) {
  static std::atomic<uint64_t> counter{0};
  const fs::path tmp = dir_ / fmt::format(".{}.tmp.{}", name, counter.fetch_add(1));
  const fs::path dst = dir_ / name;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    spdlog::error("meta {}: {}", name, std::strerror(errno));
    return false;
  }
  size_t done = 0;
  bool ok = true;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = false;
      break;
    }
    done += size_t(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), dst.c_str()) != 0) {
    spdlog::error("meta {}: {}", name, std::strerror(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

bool MetaStore::Put(const std::string& name, const std::string& text) {
  return Put(name,
             std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::optional<std::string> MetaStore::Get(const std::string& name) const {
  std::ifstream in(dir_ / name, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool MetaStore::Remove(const std::string& name) {
  std::error_code ec;
  return fs::remove(dir_ / name, ec);
}

}  // namespace kelpie::store
