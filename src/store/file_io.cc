#include "store/file_io.h"

#include <fcntl.h>

#include <cerrno>

namespace kelpie::store {

bool PreadAll(int fd, uint8_t* buf, size_t len, uint64_t off, size_t& got) {
  got = 0;
  while (got < len) {
    const ssize_t n = ::pread(fd, buf + got, len - got, off_t(off + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    got += size_t(n);
  }
  return true;
}

bool PwriteAll(int fd, const uint8_t* buf, size_t len, uint64_t off) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::pwrite(fd, buf + done, len - done, off_t(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += size_t(n);
  }
  return true;
}

void SyncDir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace kelpie::store
