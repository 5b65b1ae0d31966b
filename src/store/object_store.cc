#include "store/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "proto/constants.h"

namespace kelpie::store {

namespace res = proto::res;
namespace fs = std::filesystem;

namespace {

std::atomic<uint64_t> g_tmp_counter{0};

uint32_t ErrnoToResult(int err) {
  return (err == ENOSPC || err == EDQUOT) ? res::kNoSpace : res::kEio;
}

std::string Hex(uint64_t oid) { return fmt::format("{:016x}", oid); }

bool ParseHex(const std::string& name, uint64_t& oid) {
  if (name.size() != 16) return false;
  for (char c : name) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  oid = std::stoull(name, nullptr, 16);
  return true;
}

// Full pread/pwrite loops (EINTR, short transfers).
bool PreadAll(int fd, uint8_t* buf, size_t len, uint64_t off, size_t& got) {
  got = 0;
  while (got < len) {
    const ssize_t n = ::pread(fd, buf + got, len - got, off + got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;  // EOF: the rest reads as zeros
    got += size_t(n);
  }
  return true;
}

bool PwriteAll(int fd, const uint8_t* buf, size_t len, uint64_t off) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::pwrite(fd, buf + done, len - done, off + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += size_t(n);
  }
  return true;
}

void SyncDir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

ObjectStore::ObjectStore(fs::path dir)
    : obj_dir_(std::move(dir) / "obj"), stale_dir_(obj_dir_ / ".stale") {
  fs::create_directories(stale_dir_);
  // Temporary files of a create that crashed before its rename are garbage.
  for (const auto& e : fs::directory_iterator(obj_dir_)) {
    if (e.path().filename().string().rfind(".tmp.", 0) == 0) {
      std::error_code ec;
      fs::remove(e.path(), ec);
    }
  }
}

fs::path ObjectStore::PathOf(uint64_t oid) const { return obj_dir_ / Hex(oid); }

uint32_t ObjectStore::Read(uint64_t oid, uint64_t offset, std::span<uint8_t> out) const {
  Fd fd(::open(PathOf(oid).c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return res::kNoObj;
    spdlog::error("read {}: open: {}", Hex(oid), std::strerror(errno));
    return res::kEio;
  }
  size_t got = 0;
  if (!PreadAll(fd.get(), out.data(), out.size(), offset, got)) {
    spdlog::error("read {} at {}: {}", Hex(oid), offset, std::strerror(errno));
    return res::kEio;
  }
  std::memset(out.data() + got, 0, out.size() - got);
  return res::kSuccess;
}

uint32_t ObjectStore::Write(uint64_t oid, uint64_t offset, std::span<const uint8_t> data) {
  if (offset + data.size() < offset) return res::kInvalidParms;
  Fd fd(::open(PathOf(oid).c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return res::kNoObj;
    spdlog::error("write {}: open: {}", Hex(oid), std::strerror(errno));
    return ErrnoToResult(errno);
  }
  if (!PwriteAll(fd.get(), data.data(), data.size(), offset) || ::fdatasync(fd.get()) != 0) {
    const int err = errno;
    spdlog::error("write {} at {} ({} bytes): {}", Hex(oid), offset, data.size(),
                  std::strerror(err));
    return ErrnoToResult(err);
  }
  return res::kSuccess;
}

uint32_t ObjectStore::CreateAndWrite(uint64_t oid, uint64_t obj_size, uint64_t offset,
                                     std::span<const uint8_t> data) {
  if (offset + data.size() < offset || offset + data.size() > obj_size) return res::kInvalidParms;
  const fs::path tmp = obj_dir_ / fmt::format(".tmp.{}.{}", Hex(oid), g_tmp_counter.fetch_add(1));
  const int raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (raw < 0) {
    spdlog::error("create {}: {}", Hex(oid), std::strerror(errno));
    return ErrnoToResult(errno);
  }
  {
    Fd fd(raw);
    if (::ftruncate(fd.get(), off_t(obj_size)) != 0 ||
        !PwriteAll(fd.get(), data.data(), data.size(), offset) || ::fdatasync(fd.get()) != 0) {
      const int err = errno;
      spdlog::error("create {} ({} bytes): {}", Hex(oid), obj_size, std::strerror(err));
      ::unlink(tmp.c_str());
      return ErrnoToResult(err);
    }
  }
  if (::rename(tmp.c_str(), PathOf(oid).c_str()) != 0) {
    const int err = errno;
    spdlog::error("create {}: rename: {}", Hex(oid), std::strerror(err));
    ::unlink(tmp.c_str());
    return ErrnoToResult(err);
  }
  SyncDir(obj_dir_);
  return res::kSuccess;
}

uint32_t ObjectStore::Remove(uint64_t oid) {
  if (::unlink(PathOf(oid).c_str()) != 0) {
    if (errno == ENOENT) return res::kNoObj;
    spdlog::error("remove {}: {}", Hex(oid), std::strerror(errno));
    return res::kEio;
  }
  SyncDir(obj_dir_);
  return res::kSuccess;
}

bool ObjectStore::Exists(uint64_t oid) const { return ::access(PathOf(oid).c_str(), F_OK) == 0; }

std::optional<uint64_t> ObjectStore::Size(uint64_t oid) const {
  struct stat st;
  if (::stat(PathOf(oid).c_str(), &st) != 0) return std::nullopt;
  return uint64_t(st.st_size);
}

namespace {

// oids named by the files of a directory; a name may carry a ".suffix" (stale copies).
std::vector<uint64_t> ListDir(const fs::path& dir, bool with_suffix) {
  std::vector<uint64_t> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (with_suffix) {
      const size_t dot = name.find('.');
      if (dot == std::string::npos) continue;
      name.resize(dot);
    }
    uint64_t oid;
    if (ParseHex(name, oid)) out.push_back(oid);
  }
  ::closedir(d);
  return out;
}

}  // namespace

std::vector<uint64_t> ObjectStore::List() const { return ListDir(obj_dir_, false); }

std::vector<uint64_t> ObjectStore::ListStale() const {
  std::vector<uint64_t> v = ListDir(stale_dir_, true);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

void ObjectStore::MoveToStale(uint64_t oid, uint32_t epoch) {
  const fs::path to = stale_dir_ / fmt::format("{}.{}", Hex(oid), epoch);
  if (::rename(PathOf(oid).c_str(), to.c_str()) != 0 && errno != ENOENT) {
    spdlog::error("stale {}: {}", Hex(oid), std::strerror(errno));
  }
}

std::optional<ObjectStore::StaleCopy> ObjectStore::ReadStale(uint64_t oid) const {
  const std::string prefix = Hex(oid) + ".";
  std::optional<uint32_t> newest;
  DIR* d = ::opendir(stale_dir_.c_str());
  if (d == nullptr) return std::nullopt;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    const uint32_t ep = uint32_t(std::strtoul(name.c_str() + prefix.size(), nullptr, 10));
    if (!newest || ep > *newest) newest = ep;
  }
  ::closedir(d);
  if (!newest) return std::nullopt;
  const fs::path p = stale_dir_ / fmt::format("{}{}", prefix, *newest);
  Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) return std::nullopt;
  StaleCopy copy{*newest, std::vector<uint8_t>(size_t(st.st_size))};
  size_t got = 0;
  if (!PreadAll(fd.get(), copy.data.data(), copy.data.size(), 0, got)) return std::nullopt;
  copy.data.resize(got);
  return copy;
}

void ObjectStore::DropStale(uint64_t oid) {
  const std::string prefix = Hex(oid) + ".";
  DIR* d = ::opendir(stale_dir_.c_str());
  if (d == nullptr) return;
  std::vector<std::string> victims;
  while (struct dirent* e = ::readdir(d)) {
    if (std::string(e->d_name).rfind(prefix, 0) == 0) victims.push_back(e->d_name);
  }
  ::closedir(d);
  for (const auto& v : victims) ::unlink((stale_dir_ / v).c_str());
}

uint64_t ObjectStore::UsedBytes() const {
  uint64_t used = 0;
  for (uint64_t oid : List()) {
    struct stat st;
    if (::stat(PathOf(oid).c_str(), &st) == 0) used += uint64_t(st.st_blocks) * 512;
  }
  return used;
}

uint64_t ObjectStore::CapacityBytes() const {
  struct statvfs vfs;
  if (::statvfs(obj_dir_.c_str(), &vfs) != 0) return 0;
  return uint64_t(vfs.f_blocks) * vfs.f_frsize;
}

}  // namespace kelpie::store
