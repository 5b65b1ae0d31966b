#include "store/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "proto/constants.h"
#include "proto/crc32c.h"
#include "proto/oid.h"
#include "store/file_io.h"
#include "store/group_commit.h"

namespace kelpie::store {

namespace res = proto::res;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t B = ObjectStore::kBlockSize;
// Free space a write leaves untouched on the filesystem: room for sidecars, renames and logs.
constexpr uint64_t kSpaceReserve = 1 << 20;

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

uint64_t BlocksOf(uint64_t bytes) { return (bytes + B - 1) / B; }

// One CRC32C per 4 KiB of bytes (the last one over what is left).
std::vector<uint32_t> BlockCrcs(std::span<const uint8_t> bytes) {
  std::vector<uint32_t> out(BlocksOf(bytes.size()));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = proto::Crc32c(bytes.subspan(i * B, std::min<size_t>(B, bytes.size() - i * B)));
  return out;
}

std::vector<uint8_t> CrcBytes(std::span<const uint32_t> crcs) {
  std::vector<uint8_t> out(crcs.size() * 4);
  for (size_t i = 0; i < crcs.size(); ++i) {
    for (int k = 0; k < 4; ++k) out[i * 4 + k] = uint8_t(crcs[i] >> (8 * k));
  }
  return out;
}

// CrcBytes read back: out.size() checksums from the front of bytes.
void CrcsFromBytes(std::span<const uint8_t> bytes, std::span<uint32_t> out) {
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = uint32_t(bytes[i * 4]) | uint32_t(bytes[i * 4 + 1]) << 8 |
             uint32_t(bytes[i * 4 + 2]) << 16 | uint32_t(bytes[i * 4 + 3]) << 24;
  }
}

int64_t AllocatedBytes(const fs::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? int64_t(st.st_blocks) * 512 : 0;
}

// Writes a new temporary file in dir, `size` bytes long with `bytes` at `offset`, synced; returns
// its path, or nullopt with errno set.
std::optional<fs::path> WriteTemp(const fs::path& dir, const std::string& tag, uint64_t size,
                                  uint64_t offset, std::span<const uint8_t> bytes) {
  const fs::path tmp = dir / fmt::format(".tmp.{}.{}", tag, g_tmp_counter.fetch_add(1));
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.ok()) return std::nullopt;
  if (::ftruncate(fd.get(), off_t(size)) != 0 ||
      !PwriteAll(fd.get(), bytes.data(), bytes.size(), offset) || ::fdatasync(fd.get()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    errno = err;
    return std::nullopt;
  }
  return tmp;
}

// The checksums of a whole object image: obj_size bytes, zeros except data at offset.
std::vector<uint32_t> ImageCrcs(uint64_t obj_size, uint64_t offset, std::span<const uint8_t> data) {
  static const uint32_t kZeroBlockCrc = [] {
    const std::vector<uint8_t> zeros(B, 0);
    return proto::Crc32c(zeros);
  }();
  std::vector<uint32_t> out(BlocksOf(obj_size), kZeroBlockCrc);
  const uint64_t end = offset + data.size();
  std::vector<uint8_t> block(B);
  for (uint64_t b = 0; b < out.size(); ++b) {
    const uint64_t lo = b * B, hi = std::min(lo + B, obj_size);
    if (hi - lo == B && (hi <= offset || lo >= end)) continue;
    std::fill(block.begin(), block.end(), 0);
    const uint64_t from = std::max(lo, offset), to = std::min(hi, end);
    if (from < to) std::memcpy(&block[from - lo], &data[from - offset], to - from);
    out[b] = proto::Crc32c(std::span(block.data(), hi - lo));
  }
  return out;
}

// Objects whose descriptors stay open: two descriptors each, leaving most of the process's
// descriptors to connections.
size_t HandleCapacity() {
  constexpr size_t kMaxCachedObjects = 1024;
  struct rlimit nofile;
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
    return std::min<size_t>(kMaxCachedObjects, size_t(nofile.rlim_cur / 8));
  }
  return kMaxCachedObjects;
}

}  // namespace

ObjectStore::ObjectStore(fs::path dir, uint64_t capacity_bytes)
    : obj_dir_(std::move(dir) / "obj"),
      stale_dir_(obj_dir_ / ".stale"),
      capacity_(capacity_bytes),
      handles_(HandleCapacity()) {
  fs::create_directories(stale_dir_);
  bool holds_files = !fs::is_empty(stale_dir_);
  for (const auto& e : fs::directory_iterator(obj_dir_)) {
    const std::string name = e.path().filename().string();
    holds_files |= e.path() != stale_dir_;
    std::error_code ec;
    // Temporary files of a create that crashed before its rename are garbage, and so is a
    // sidecar whose object is gone.
    if (name.rfind(".tmp.", 0) == 0) fs::remove(e.path(), ec);
    uint64_t oid;
    if (name.size() == 20 && name.ends_with(".crc") && ParseHex(name.substr(0, 16), oid) &&
        !Exists(oid)) {
      fs::remove(e.path(), ec);
    }
  }
  used_ = int64_t(ScanUsedBytes());

  // Write-back writes of an earlier run of this process may still be only in the page cache:
  // make them durable before anything is served (Flush no longer knows about them). A store
  // without files has nothing of its own to sync (syncfs would flush the whole filesystem).
  if (holds_files) SyncFilesystem("start");
  commit_ = std::make_unique<GroupCommit>();
}

ObjectStore::~ObjectStore() {
  // A sheep that stops makes its write-back writes durable, as a disk flushes its cache when it
  // is shut down (the next start would sync them too, but the copy may be used before that).
  if (DirtyCount() != 0) SyncFilesystem("stop");
}

void ObjectStore::SyncFilesystem(const char* when) const {
  if (Fd dir(::open(obj_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      !dir.ok() || ::syncfs(dir.get()) != 0) {
    spdlog::warn("store {}: syncfs at {}: {}", obj_dir_.string(), when, std::strerror(errno));
  }
}

fs::path ObjectStore::PathOf(uint64_t oid) const { return obj_dir_ / Hex(oid); }
fs::path ObjectStore::CrcPathOf(uint64_t oid) const { return obj_dir_ / (Hex(oid) + ".crc"); }

std::shared_mutex& ObjectStore::LockOf(uint64_t oid) const {
  return locks_[(oid ^ (oid >> 32)) % locks_.size()];
}

std::shared_ptr<ObjectHandle> ObjectStore::OpenHandle(uint64_t oid, uint32_t* rc) const {
  if (auto h = handles_.Find(oid)) return h;
  auto h = std::make_shared<ObjectHandle>();
  h->data = Fd(::open(PathOf(oid).c_str(), O_RDWR | O_CLOEXEC));
  struct stat st;
  if (!h->data.ok() || ::fstat(h->data.get(), &st) != 0) {
    if (errno == ENOENT) {
      *rc = res::kNoObj;
    } else {
      spdlog::error("object {}: open: {}", Hex(oid), std::strerror(errno));
      *rc = ErrnoToResult(errno);
    }
    return nullptr;
  }
  h->size = uint64_t(st.st_size);
  h->data_alloc = int64_t(st.st_blocks) * 512;
  h->allocated = uint64_t(h->data_alloc) >= h->size;
  h->crc = Fd(::open(CrcPathOf(oid).c_str(), O_RDWR | O_CLOEXEC));
  // Without a sidecar (an older store) the handle is not kept: LoadChecksums creates the
  // sidecar, and the next open finds it.
  if (h->crc.ok()) handles_.Insert(oid, h);
  return h;
}

uint32_t ObjectStore::LoadChecksums(uint64_t oid, const ObjectHandle& h, uint64_t first,
                                    std::span<uint32_t> out) const {
  Fd own;  // the sidecar opened here when the handle has none
  int crc = h.crc.get();
  if (crc < 0) {
    const fs::path crc_path = CrcPathOf(oid);
    own = Fd(::open(crc_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!own.ok() && errno == ENOENT) {
      // An object from before checksums: trust its bytes once and record their checksums.
      struct stat st;
      if (::fstat(h.data.get(), &st) != 0) return res::kEio;
      std::vector<uint8_t> all(size_t(st.st_size));
      size_t got = 0;
      if (!PreadAll(h.data.get(), all.data(), all.size(), 0, got)) return res::kEio;
      all.resize(got);
      const std::vector<uint8_t> table = CrcBytes(BlockCrcs(all));
      const auto tmp = WriteTemp(obj_dir_, Hex(oid) + ".crc", table.size(), 0, table);
      if (!tmp || ::rename(tmp->c_str(), crc_path.c_str()) != 0) {
        spdlog::error("object {}: cannot write its checksums: {}", Hex(oid), std::strerror(errno));
        return ErrnoToResult(errno);
      }
      spdlog::info("object {}: had no checksums (older store); computed from its current bytes",
                   Hex(oid));
      own = Fd(::open(crc_path.c_str(), O_RDONLY | O_CLOEXEC));
    }
    if (!own.ok()) {
      spdlog::error("object {}: open checksums: {}", Hex(oid), std::strerror(errno));
      return res::kEio;
    }
    crc = own.get();
  }
  const size_t blocks = BlocksOf(h.size);
  if (!own.ok() && blocks <= ObjectHandle::kMaxCachedBlocks) {
    std::lock_guard lk(h.crc_mu);
    if (h.crc_table.empty()) {
      std::vector<uint8_t> raw(blocks * 4);
      size_t got = 0;
      if (PreadAll(crc, raw.data(), raw.size(), 0, got) && got == raw.size()) {
        h.crc_table.resize(blocks);
        CrcsFromBytes(raw, h.crc_table);
      }  // else the read below reports what is wrong
    }
    if (first + out.size() <= h.crc_table.size()) {
      std::copy_n(h.crc_table.begin() + ptrdiff_t(first), out.size(), out.begin());
      return res::kSuccess;
    }
  }
  std::vector<uint8_t> raw(out.size() * 4);
  size_t got = 0;
  if (!PreadAll(crc, raw.data(), raw.size(), first * 4, got)) return res::kEio;
  if (got != raw.size()) {
    spdlog::error("object {}: checksum table ends before block {}", Hex(oid), first + got / 4);
    return res::kChecksumError;
  }
  CrcsFromBytes(raw, out);
  return res::kSuccess;
}

uint32_t ObjectStore::VerifyBlocks(uint64_t oid, const ObjectHandle& h, uint64_t first,
                                   std::span<const uint8_t> bytes) const {
  const std::vector<uint32_t> have = BlockCrcs(bytes);
  std::vector<uint32_t> want(have.size());
  if (uint32_t rc = LoadChecksums(oid, h, first, want); rc != res::kSuccess) return rc;
  for (size_t i = 0; i < have.size(); ++i) {
    if (have[i] != want[i]) {
      spdlog::error(
          "object {}: block {} (bytes {}..{}) failed its checksum: stored {:08x}, "
          "computed {:08x}",
          Hex(oid), first + i, (first + i) * B,
          (first + i) * B + std::min<uint64_t>(B, bytes.size() - i * B), want[i], have[i]);
      return res::kChecksumError;
    }
  }
  return res::kSuccess;
}

uint32_t ObjectStore::CheckSpace(uint64_t oid, uint64_t bytes) const {
  const int64_t used = used_.load();
  if (capacity_ != 0 && uint64_t(std::max<int64_t>(used, 0)) + bytes > capacity_) {
    spdlog::warn("object {}: refusing a {} byte write: store at {} of its {} byte capacity",
                 Hex(oid), bytes, used, capacity_);
    return res::kNoSpace;
  }
  struct statvfs vfs;
  if (::statvfs(obj_dir_.c_str(), &vfs) == 0) {
    const uint64_t avail = uint64_t(vfs.f_bavail) * vfs.f_frsize;
    if (avail < bytes + kSpaceReserve) {
      spdlog::warn("object {}: refusing a {} byte write: {} bytes free on disk", Hex(oid), bytes,
                   avail);
      return res::kNoSpace;
    }
  }
  return res::kSuccess;
}

uint32_t ObjectStore::Read(uint64_t oid, uint64_t offset, std::span<uint8_t> out) const {
  std::shared_lock lk(LockOf(oid));
  uint32_t rc = res::kSuccess;
  const std::shared_ptr<ObjectHandle> h = OpenHandle(oid, &rc);
  if (!h) return rc;
  const uint64_t size = h->size;
  if (out.empty()) return res::kSuccess;
  if (offset >= size) {
    std::memset(out.data(), 0, out.size());
    return res::kSuccess;
  }
  // Whole blocks are read so that each can be checked against its checksum: straight into
  // `out` when it covers whole blocks, else into a buffer of the blocks it touches.
  const uint64_t end = std::min<uint64_t>(offset + out.size(), size);
  const uint64_t first = offset / B;
  const uint64_t lo = first * B, hi = std::min(BlocksOf(end) * B, size);
  const bool direct = lo == offset && hi == end;
  std::vector<uint8_t> buffer;
  std::span<uint8_t> blocks = out.first(end - offset);
  if (!direct) {
    buffer.resize(hi - lo);
    blocks = buffer;
  }
  size_t got = 0;
  if (!PreadAll(h->data.get(), blocks.data(), blocks.size(), lo, got)) {
    spdlog::error("read {} at {}: {}", Hex(oid), offset, std::strerror(errno));
    return res::kEio;
  }
  if (got != blocks.size()) {
    spdlog::error("read {}: the file ends at {}, before {}", Hex(oid), lo + got, hi);
    return res::kEio;
  }
  if (uint32_t v = VerifyBlocks(oid, *h, first, blocks); v != res::kSuccess) return v;
  if (!direct) std::memcpy(out.data(), &buffer[offset - lo], end - offset);
  if (end - offset < out.size())
    std::memset(out.data() + (end - offset), 0, out.size() - (end - offset));
  return res::kSuccess;
}

uint32_t ObjectStore::ApplyWrite(uint64_t oid, uint64_t offset, std::span<const uint8_t> data,
                                 std::shared_ptr<ObjectHandle>& handle) {
  if (offset + data.size() < offset) return res::kInvalidParms;
  std::unique_lock lk(LockOf(oid));
  uint32_t rc = res::kSuccess;
  handle = OpenHandle(oid, &rc);
  if (!handle) return rc;
  ObjectHandle& h = *handle;
  if (data.empty()) return res::kSuccess;  // nothing to apply, nothing to sync
  const uint64_t end = offset + data.size();
  if (end > h.size) {
    spdlog::error("write {}: bytes {}..{} lie past its end ({})", Hex(oid), offset, end, h.size);
    return res::kInvalidParms;
  }
  // Overwrites of a fully allocated file need no new space (the common case: sheepdog's
  // objects are written whole when created).
  if (!h.allocated) {
    if (uint32_t sp = CheckSpace(oid, data.size()); sp != res::kSuccess) return sp;
  }
  const uint64_t first = offset / B, last = BlocksOf(end) - 1;
  // The new checksums of every block the write touches: the old bytes of the edge blocks it
  // only partly covers are read and checked first (new bytes must not bless a rotten block).
  // Checking them also makes sure the sidecar exists (an object from before checksums gets
  // one here).
  std::vector<uint32_t> crcs;
  crcs.reserve(last - first + 1);
  std::vector<uint8_t> edge;
  for (uint64_t b = first; b <= last; ++b) {
    const uint64_t blo = b * B, bhi = std::min(blo + B, h.size);
    if (offset <= blo && end >= bhi) {
      crcs.push_back(proto::Crc32c(data.subspan(blo - offset, bhi - blo)));
      continue;
    }
    edge.assign(bhi - blo, 0);
    size_t got = 0;
    if (!PreadAll(h.data.get(), edge.data(), edge.size(), blo, got) || got != edge.size())
      return res::kEio;
    if (uint32_t v = VerifyBlocks(oid, h, b, edge); v != res::kSuccess) return v;
    const uint64_t from = std::max(offset, blo), to = std::min(end, bhi);
    std::memcpy(&edge[from - blo], &data[from - offset], to - from);
    crcs.push_back(proto::Crc32c(edge));
  }
  if (!h.crc.ok()) {
    // No edge was read, and the object has no sidecar yet: make one (from the old bytes), then
    // use the handle that has it.
    std::vector<uint32_t> probe(1);
    if (uint32_t v = LoadChecksums(oid, h, first, probe); v != res::kSuccess) return v;
    handle = OpenHandle(oid, &rc);
    if (!handle) return rc;
    if (!handle->crc.ok()) return res::kEio;
  }
  ObjectHandle& w = *handle;
  const std::vector<uint8_t> table = CrcBytes(crcs);
  if (!PwriteAll(w.data.get(), data.data(), data.size(), offset) ||
      !PwriteAll(w.crc.get(), table.data(), table.size(), first * 4)) {
    const int err = errno;
    spdlog::error("write {} at {} ({} bytes): {}", Hex(oid), offset, data.size(),
                  std::strerror(err));
    // What the files hold is unknown now: the next access reopens them.
    handles_.Evict(oid);
    return ErrnoToResult(err);
  }
  {
    std::lock_guard clk(w.crc_mu);
    if (first + crcs.size() <= w.crc_table.size())
      std::copy(crcs.begin(), crcs.end(), w.crc_table.begin() + ptrdiff_t(first));
  }
  if (!w.allocated) {
    // Holes may have been filled: account for the blocks the write allocated.
    struct stat st;
    if (::fstat(w.data.get(), &st) == 0) {
      const int64_t alloc = int64_t(st.st_blocks) * 512;
      used_ += alloc - w.data_alloc;
      w.data_alloc = alloc;
      w.allocated = uint64_t(alloc) >= w.size;
    }
  }
  return res::kSuccess;
}

uint32_t ObjectStore::WriteNoWait(uint64_t oid, uint64_t offset, std::span<const uint8_t> data,
                                  std::function<void(uint32_t)> durable) {
  std::shared_ptr<ObjectHandle> h;
  if (uint32_t rc = ApplyWrite(oid, offset, data, h); rc != res::kSuccess) return rc;
  if (data.empty()) {
    durable(res::kSuccess);
    return res::kSuccess;
  }
  std::vector<int> fds{h->data.get(), h->crc.get()};
  commit_->Submit(oid, std::move(fds), h, std::move(durable));
  return res::kSuccess;
}

uint32_t ObjectStore::Write(uint64_t oid, uint64_t offset, std::span<const uint8_t> data) {
  std::shared_ptr<ObjectHandle> h;
  if (uint32_t rc = ApplyWrite(oid, offset, data, h); rc != res::kSuccess) return rc;
  if (data.empty()) return res::kSuccess;
  std::vector<int> fds{h->data.get(), h->crc.get()};
  return commit_->SubmitAndWait(oid, std::move(fds), h);
}

uint32_t ObjectStore::WriteBack(uint64_t oid, uint64_t offset, std::span<const uint8_t> data) {
  std::shared_ptr<ObjectHandle> h;
  if (uint32_t rc = ApplyWrite(oid, offset, data, h); rc != res::kSuccess) return rc;
  // Remembered after the bytes are in place and before the caller acknowledges them, so a Flush
  // that starts after the acknowledgement covers them.
  std::lock_guard lk(dirty_mu_);
  dirty_.insert(oid);
  return res::kSuccess;
}

void ObjectStore::Flush(const std::vector<uint32_t>& vids, std::function<void(uint32_t)> done) {
  std::vector<uint64_t> oids;
  {
    std::lock_guard lk(dirty_mu_);
    for (auto it = dirty_.begin(); it != dirty_.end();) {
      if (vids.empty() || std::find(vids.begin(), vids.end(), proto::OidToVid(*it)) != vids.end()) {
        oids.push_back(*it);
        it = dirty_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // One completion for the whole flush: the last object's sync reports the first error seen.
  struct Pending {
    std::mutex mu;
    size_t left;
    uint32_t result = res::kSuccess;
    std::function<void(uint32_t)> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = oids.size() + 1;  // + 1: held until every object is submitted
  pending->done = std::move(done);
  auto finish = [pending](uint32_t rc) {
    std::function<void(uint32_t)> run;
    uint32_t result;
    {
      std::lock_guard lk(pending->mu);
      if (rc != res::kSuccess && pending->result == res::kSuccess) pending->result = rc;
      if (--pending->left != 0) return;
      run = std::move(pending->done);
      result = pending->result;
    }
    run(result);
  };
  for (const uint64_t oid : oids) {
    std::shared_ptr<ObjectHandle> h;
    {
      std::shared_lock lk(LockOf(oid));
      uint32_t rc = res::kSuccess;
      h = OpenHandle(oid, &rc);
    }
    if (!h || !h->crc.ok()) {
      // Removed (or replaced by a create, which syncs) since it was written: nothing to flush.
      finish(res::kSuccess);
      continue;
    }
    std::vector<int> fds{h->data.get(), h->crc.get()};
    commit_->Submit(oid, std::move(fds), h, [this, oid, finish](uint32_t rc) {
      if (rc != res::kSuccess) {
        spdlog::error("flush of {}: sync failed; the object stays dirty", Hex(oid));
        std::lock_guard lk(dirty_mu_);
        dirty_.insert(oid);
      }
      finish(rc);
    });
  }
  finish(res::kSuccess);
}

size_t ObjectStore::DirtyCount() const {
  std::lock_guard lk(dirty_mu_);
  return dirty_.size();
}

uint32_t ObjectStore::CreateAndWrite(uint64_t oid, uint64_t obj_size, uint64_t offset,
                                     std::span<const uint8_t> data) {
  if (offset + data.size() < offset || offset + data.size() > obj_size) return res::kInvalidParms;
  const std::vector<uint8_t> table = CrcBytes(ImageCrcs(obj_size, offset, data));
  if (uint32_t rc = CheckSpace(oid, data.size() + table.size()); rc != res::kSuccess) return rc;
  const auto tmp = WriteTemp(obj_dir_, Hex(oid), obj_size, offset, data);
  const auto tmp_crc =
      tmp ? WriteTemp(obj_dir_, Hex(oid) + ".crc", table.size(), 0, table) : std::nullopt;
  if (!tmp_crc) {
    const int err = errno;
    spdlog::error("create {} ({} bytes): {}", Hex(oid), obj_size, std::strerror(err));
    if (tmp) ::unlink(tmp->c_str());
    return ErrnoToResult(err);
  }
  {
    std::unique_lock lk(LockOf(oid));
    const int64_t old_alloc = AllocatedBytes(PathOf(oid)) + AllocatedBytes(CrcPathOf(oid));
    // Checksums first: a crash between the renames leaves the old bytes under the new
    // checksums, which reads as a checksum error and is repaired from another copy.
    if (::rename(tmp_crc->c_str(), CrcPathOf(oid).c_str()) != 0 ||
        ::rename(tmp->c_str(), PathOf(oid).c_str()) != 0) {
      const int err = errno;
      spdlog::error("create {}: rename: {}", Hex(oid), std::strerror(err));
      ::unlink(tmp->c_str());
      ::unlink(tmp_crc->c_str());
      return ErrnoToResult(err);
    }
    handles_.Evict(oid);  // the old handle names the replaced files
    used_ += AllocatedBytes(PathOf(oid)) + AllocatedBytes(CrcPathOf(oid)) - old_alloc;
  }
  SyncDir(obj_dir_);
  return res::kSuccess;
}

uint32_t ObjectStore::Remove(uint64_t oid) {
  std::unique_lock lk(LockOf(oid));
  handles_.Evict(oid);
  const int64_t alloc = AllocatedBytes(PathOf(oid)) + AllocatedBytes(CrcPathOf(oid));
  if (::unlink(PathOf(oid).c_str()) != 0) {
    if (errno == ENOENT) return res::kNoObj;
    spdlog::error("remove {}: {}", Hex(oid), std::strerror(errno));
    return res::kEio;
  }
  ::unlink(CrcPathOf(oid).c_str());
  used_ -= alloc;
  SyncDir(obj_dir_);
  return res::kSuccess;
}

// Asks the filesystem, not the handle cache: a file removed behind the store's back (an operator,
// a test) must read as missing so that repair and recovery put it back.
bool ObjectStore::Exists(uint64_t oid) const { return ::access(PathOf(oid).c_str(), F_OK) == 0; }

std::optional<uint64_t> ObjectStore::Size(uint64_t oid) const {
  if (auto h = handles_.Find(oid)) return h->size;
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

// The names in `dir` starting with `prefix`.
std::vector<std::string> NamesWithPrefix(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    if (std::string_view(e->d_name).starts_with(prefix)) out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

std::optional<std::vector<uint8_t>> ReadWholeFile(const fs::path& p) {
  Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (!fd.ok() || ::fstat(fd.get(), &st) != 0) return std::nullopt;
  std::vector<uint8_t> data(size_t(st.st_size));
  size_t got = 0;
  if (!PreadAll(fd.get(), data.data(), data.size(), 0, got)) return std::nullopt;
  data.resize(got);
  return data;
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
  std::unique_lock lk(LockOf(oid));
  handles_.Evict(oid);
  const int64_t alloc = AllocatedBytes(PathOf(oid)) + AllocatedBytes(CrcPathOf(oid));
  const fs::path to = stale_dir_ / fmt::format("{}.{}", Hex(oid), epoch);
  if (::rename(PathOf(oid).c_str(), to.c_str()) != 0) {
    if (errno != ENOENT) spdlog::error("stale {}: {}", Hex(oid), std::strerror(errno));
    return;
  }
  const fs::path crc_to = to.string() + ".crc";
  if (::rename(CrcPathOf(oid).c_str(), crc_to.c_str()) != 0 && errno != ENOENT)
    spdlog::error("stale {}: checksums: {}", Hex(oid), std::strerror(errno));
  used_ -= alloc;
}

std::optional<ObjectStore::StaleCopy> ObjectStore::ReadStale(uint64_t oid) const {
  const std::string prefix = Hex(oid) + ".";
  std::optional<uint32_t> newest;
  for (const std::string& name : NamesWithPrefix(stale_dir_, prefix)) {
    const uint32_t ep = uint32_t(std::strtoul(name.c_str() + prefix.size(), nullptr, 10));
    if (!newest || ep > *newest) newest = ep;
  }
  if (!newest) return std::nullopt;
  const fs::path p = stale_dir_ / fmt::format("{}{}", prefix, *newest);
  auto data = ReadWholeFile(p);
  if (!data) return std::nullopt;
  // A stale copy set aside before checksums existed has no sidecar: it is served unverified.
  const auto table = ReadWholeFile(p.string() + ".crc");
  if (table && CrcBytes(BlockCrcs(*data)) != *table) {
    spdlog::error("stale copy {} of epoch {} failed its checksums: not used", Hex(oid), *newest);
    return std::nullopt;
  }
  return StaleCopy{*newest, std::move(*data)};
}

void ObjectStore::DropStale(uint64_t oid) {
  for (const std::string& name : NamesWithPrefix(stale_dir_, Hex(oid) + "."))
    ::unlink((stale_dir_ / name).c_str());
}

uint64_t ObjectStore::ScanUsedBytes() const {
  uint64_t used = 0;
  for (uint64_t oid : List())
    used += uint64_t(AllocatedBytes(PathOf(oid)) + AllocatedBytes(CrcPathOf(oid)));
  return used;
}

uint64_t ObjectStore::UsedBytes() const { return uint64_t(std::max<int64_t>(used_.load(), 0)); }

uint64_t ObjectStore::CapacityBytes() const {
  if (capacity_ != 0) return capacity_;
  struct statvfs vfs;
  if (::statvfs(obj_dir_.c_str(), &vfs) != 0) return 0;
  return uint64_t(vfs.f_blocks) * vfs.f_frsize;
}

}  // namespace kelpie::store
