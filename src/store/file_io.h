// Small POSIX file helpers of the store: an owning descriptor and whole-transfer pread/pwrite.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <utility>

namespace kelpie::store {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

// Reads up to len bytes at off (EINTR and short reads retried); `got` < len only at end of file.
bool PreadAll(int fd, uint8_t* buf, size_t len, uint64_t off, size_t& got);
// Writes all len bytes at off, or returns false with errno set.
bool PwriteAll(int fd, const uint8_t* buf, size_t len, uint64_t off);
// fsync of a directory, so a rename or unlink in it is durable.
void SyncDir(const std::filesystem::path& dir);

}  // namespace kelpie::store
