#include "client/vdi_io.h"

#include <algorithm>
#include <cstring>

#include "proto/constants.h"
#include "proto/oid.h"

namespace kelpie::client {

namespace res = proto::res;

namespace {
constexpr int kMaxRetries = 16;   // reloads / re-resolutions before giving up on a churning VDI
constexpr int kNetworkTries = 8;  // connections tried (with back-off) before answering kNetwork
}  // namespace

VdiIo::VdiIo(SyncClient& conn, std::string name, std::string tag, uint32_t snapid, Mode mode)
    : own_pool_(std::make_unique<ConnectionPool>(conn)),
      pool_(own_pool_.get()),
      name_(std::move(name)),
      tag_(std::move(tag)),
      snapid_(snapid),
      mode_(mode) {}

VdiIo::VdiIo(ConnectionPool& pool, std::string name, std::string tag, uint32_t snapid, Mode mode)
    : pool_(&pool), name_(std::move(name)), tag_(std::move(tag)), snapid_(snapid), mode_(mode) {}

VdiIo::~VdiIo() = default;

uint16_t VdiIo::io_flags() const { return mode_ == Mode::kShared ? proto::flag::kTgt : 0; }

uint32_t VdiIo::vid() const {
  std::shared_lock lk(mu_);
  return inode_.vdi_id;
}

uint64_t VdiIo::size() const {
  std::shared_lock lk(mu_);
  return inode_.vdi_size;
}

VdiIo::Snapshot VdiIo::At(uint32_t idx) const {
  std::shared_lock lk(mu_);
  const uint32_t owner = idx < inode_.data_vdi_id.size() ? inode_.data_vdi_id[idx] : 0;
  return Snapshot{inode_.vdi_id, owner, gen_};
}

template <typename Fn>
uint32_t VdiIo::Exec(Fn&& fn) {
  return pool_->Retrying(
      [&](SyncClient& c) {
        if (mode_ == Mode::kShared) {
          // A new connection after a failure may be a new participant (another sheep, or the
          // same one after it dropped us): take the lock and reload before any I/O.
          std::lock_guard rl(relock_mu_);
          if (relock_) {
            uint32_t vid = 0;
            uint32_t rc = Resolve(c, &vid);
            if (rc == res::kSuccess) rc = LoadInode(c, vid);
            if (rc != res::kSuccess) return rc;
            ++lock_epoch_;
            relock_ = false;
          }
        }
        return fn(c);
      },
      kNetworkTries,
      [&](const NetworkError&) {
        std::lock_guard rl(relock_mu_);
        relock_ = true;
      });
}

uint32_t VdiIo::Resolve(SyncClient& c, uint32_t* vid) {
  proto::Header h;
  h.opcode = mode_ == Mode::kShared ? proto::op::kLockVdi : proto::op::kGetVdiInfo;
  if (mode_ == Mode::kShared) h.set_lock_type(proto::kLockShared);
  h.set_snapid(snapid_);
  const proto::Header rsp = c.Request(h, VdiNamePayload(name_, tag_));
  *vid = rsp.rsp_vdi_id();
  if (mode_ == Mode::kShared && rsp.result() == res::kSuccess) {
    std::lock_guard lk(lock_endpoint_mu_);
    lock_endpoint_ = c.endpoint();
  }
  return rsp.result();
}

std::string VdiIo::lock_endpoint() const {
  std::lock_guard lk(lock_endpoint_mu_);
  return lock_endpoint_;
}

uint32_t VdiIo::LoadInode(SyncClient& c, uint32_t vid) {
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    std::vector<uint8_t> b;
    const uint32_t rc =
        c.ReadObj(proto::VidToInodeOid(vid), 0, proto::kInodeRefreshSize, b, io_flags());
    if (rc != res::kSuccess) return rc;
    proto::Inode fresh;
    if (!proto::DecodeInode(b, fresh)) return res::kEio;
    // A participant's working VDI that became a snapshot: follow the name to the new one.
    if (mode_ != Mode::kShared || !fresh.is_snapshot() || !tag_.empty() || snapid_ != 0) {
      std::unique_lock lk(mu_);
      inode_ = std::move(fresh);
      ++gen_;
      return res::kSuccess;
    }
    if (const uint32_t r = Resolve(c, &vid); r != res::kSuccess) return r;
  }
  return res::kEio;
}

uint32_t VdiIo::Open() {
  return Exec([&](SyncClient& c) {
    uint32_t vid = 0;
    if (const uint32_t rc = Resolve(c, &vid); rc != res::kSuccess) return rc;
    return LoadInode(c, vid);
  });
}

uint32_t VdiIo::Close() {
  const uint32_t vid = this->vid();
  if (mode_ != Mode::kShared || vid == 0) return res::kSuccess;
  return Exec([&](SyncClient& c) {
    proto::Header h;
    h.opcode = proto::op::kReleaseVdi;
    h.set_lock_type(proto::kLockShared);
    h.set_base_vdi_id(vid);
    const uint32_t rc = c.Request(h).result();
    return rc == res::kVdiNotLocked ? res::kSuccess : rc;
  });
}

uint32_t VdiIo::Reload() {
  return Exec([&](SyncClient& c) { return LoadInode(c, vid()); });
}

uint32_t VdiIo::Refresh(uint64_t seen, bool follow_name) {
  std::lock_guard rl(reload_mu_);
  {
    std::shared_lock lk(mu_);
    if (gen_ != seen) return res::kSuccess;  // another thread reloaded meanwhile
  }
  return Exec([&](SyncClient& c) {
    uint32_t vid = this->vid();
    if (follow_name) {
      if (const uint32_t r = Resolve(c, &vid); r != res::kSuccess) return r;
    }
    return LoadInode(c, vid);
  });
}

uint32_t VdiIo::RefreshHeader() {
  const uint32_t vid = this->vid();
  return Exec([&](SyncClient& c) {
    std::vector<uint8_t> b;
    const uint32_t rc =
        c.ReadObj(proto::VidToInodeOid(vid), 0, proto::kInodeHeaderSize, b, io_flags());
    if (rc != res::kSuccess) return rc;
    proto::Inode head;
    if (!proto::DecodeInode(b, head)) return res::kEio;
    std::unique_lock lk(mu_);
    if (inode_.vdi_id == vid) inode_.vdi_size = head.vdi_size;
    return res::kSuccess;
  });
}

uint32_t VdiIo::CheckFresh(SyncClient& c, uint32_t vid, LuFence fence) {
  if (mode_ != Mode::kShared) return res::kSuccess;
  std::vector<uint8_t> probe;
  return c.ReadObj(proto::VidToInodeOid(vid), 0, 1, probe, Tag(fence));
}

uint32_t VdiIo::CheckRange(uint64_t offset, uint64_t len, bool writing, uint64_t* obj_size) const {
  std::shared_lock lk(mu_);
  if (writing && inode_.is_snapshot()) return res::kReadonly;
  *obj_size = inode_.object_size();
  if (offset + len > inode_.vdi_size || offset + len < offset) return res::kInvalidParms;
  return res::kSuccess;
}

template <typename Fn>
uint32_t VdiIo::ForEachPiece(uint64_t offset, uint64_t len, bool writing, Fn&& fn) {
  uint64_t obj_size;
  if (const uint32_t rc = CheckRange(offset, len, writing, &obj_size); rc != res::kSuccess) {
    return rc;
  }
  uint64_t done = 0;
  while (done < len) {
    const uint64_t pos = offset + done;
    const uint64_t n = std::min<uint64_t>(obj_size - pos % obj_size, len - done);
    const uint32_t rc = fn(uint32_t(pos / obj_size), pos % obj_size, done, n, n == obj_size);
    if (rc != res::kSuccess) return rc;
    done += n;
  }
  return res::kSuccess;
}

uint32_t VdiIo::Read(uint64_t offset, std::span<uint8_t> out, LuFence fence) {
  return ForEachPiece(offset, out.size(), false,
                      [&](uint32_t idx, uint64_t obj_off, uint64_t done, uint64_t n, bool) {
                        uint32_t rc = res::kEio;
                        for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
                          const Snapshot at = At(idx);
                          rc = Exec([&](SyncClient& c) {
                            if (at.owner == 0) {
                              // Never written, as far as this inode knows; a participant asks
                              // whether it still knows.
                              const uint32_t r = CheckFresh(c, at.vid, fence);
                              if (r == res::kSuccess) std::memset(out.data() + done, 0, n);
                              return r;
                            }
                            std::vector<uint8_t> buf;
                            const uint32_t r = c.ReadObj(proto::VidToDataOid(at.owner, idx),
                                                         obj_off, uint32_t(n), buf, Tag(fence));
                            if (r == res::kSuccess) std::memcpy(out.data() + done, buf.data(), n);
                            return r;
                          });
                          if (rc != res::kInodeInvalidated) break;
                          if (const uint32_t r = Refresh(at.gen, false); r != res::kSuccess)
                            return r;
                        }
                        return rc;
                      });
}

uint32_t VdiIo::SetOwner(SyncClient& c, uint32_t vid, uint32_t idx) {
  uint8_t entry[4];
  proto::StoreLE<uint32_t>(entry, vid);
  const uint32_t rc =
      c.WriteObj(proto::VidToInodeOid(vid), proto::inode_off::kDataVdiId + 4ull * idx, entry, false,
                 0, io_flags());
  if (rc == res::kSuccess) {
    std::unique_lock lk(mu_);
    if (inode_.vdi_id == vid && idx < inode_.data_vdi_id.size()) inode_.data_vdi_id[idx] = vid;
  }
  return rc;
}

uint32_t VdiIo::WriteObject(uint32_t idx, uint64_t obj_off, std::span<const uint8_t> data,
                            LuFence fence, bool write_back) {
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    const Snapshot at = At(idx);
    const uint64_t oid = proto::VidToDataOid(at.vid, idx);
    const uint32_t rc = Exec([&](SyncClient& c) {
      if (at.owner == at.vid) {
        // Only overwrites are write-back: a create (allocation, copy-on-write) is durable
        // before the inode records it.
        return c.WriteObj(oid, obj_off, data, false, 0, Tag(fence, write_back));
      }
      const uint64_t cow = at.owner != 0 ? proto::VidToDataOid(at.owner, idx) : 0;
      // The inode update that follows is not fenced: once the object is written, recording
      // its owner completes that write.
      const uint32_t r = c.WriteObj(oid, obj_off, data, true, cow, Tag(fence));
      return r == res::kSuccess ? SetOwner(c, at.vid, idx) : r;
    });
    if (rc == res::kReadonly || rc == res::kInodeInvalidated) {
      // READONLY: a snapshot was taken, the name now resolves to a new working VDI.
      if (const uint32_t r = Refresh(at.gen, rc == res::kReadonly); r != res::kSuccess) return r;
      continue;
    }
    return rc;
  }
  return res::kEio;
}

uint32_t VdiIo::Write(uint64_t offset, std::span<const uint8_t> data, LuFence fence,
                      bool write_back) {
  return ForEachPiece(offset, data.size(), true,
                      [&](uint32_t idx, uint64_t obj_off, uint64_t done, uint64_t n, bool) {
                        return WriteObject(idx, obj_off, data.subspan(done, n), fence, write_back);
                      });
}

uint32_t VdiIo::Own(uint32_t idx, const Snapshot& at, LuFence fence) {
  return Exec([&](SyncClient& c) {
    // An empty CREATE_AND_WRITE: creates the object (copy of the ancestor's, or zeros) where it
    // does not exist yet, and leaves an existing one untouched.
    const uint64_t cow = at.owner != 0 ? proto::VidToDataOid(at.owner, idx) : 0;
    const uint32_t r = c.WriteObj(proto::VidToDataOid(at.vid, idx), 0, {}, true, cow,
                                  ObjTag(uint16_t(io_flags() | proto::flag::kCmdWrite), fence));
    return r == res::kSuccess ? SetOwner(c, at.vid, idx) : r;
  });
}

uint32_t VdiIo::CompareAndWrite(uint64_t offset, std::span<const uint8_t> compare,
                                std::span<const uint8_t> data, uint64_t* miscompare_at,
                                LuFence fence) {
  if (compare.size() != data.size()) return res::kInvalidParms;
  return ForEachPiece(
      offset, data.size(), true,
      [&](uint32_t idx, uint64_t obj_off, uint64_t done, uint64_t n, bool) {
        std::vector<uint8_t> both(compare.begin() + done, compare.begin() + done + n);
        both.insert(both.end(), data.begin() + done, data.begin() + done + n);
        for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
          const Snapshot at = At(idx);
          uint64_t differs_at = 0;
          uint32_t rc;
          if (at.owner != at.vid) {
            rc = Own(idx, at, fence);
            if (rc == res::kSuccess) continue;  // now compare and write in the object we own
          } else {
            rc = Exec([&](SyncClient& c) {
              proto::Header h;
              h.opcode = proto::op::kCompareAndWriteObj;
              Tag(fence).ApplyTo(h);
              h.set_oid(proto::VidToDataOid(at.vid, idx));
              h.set_offset(uint32_t(obj_off));
              const proto::Header rsp = c.Request(h, both);
              differs_at = rsp.rsp_offset();
              return rsp.result();
            });
            if (rc == res::kMiscompare) *miscompare_at = done + differs_at;
          }
          if (rc != res::kReadonly && rc != res::kInodeInvalidated && rc != res::kNoObj) return rc;
          if (const uint32_t r = Refresh(at.gen, rc == res::kReadonly); r != res::kSuccess)
            return r;
        }
        return res::kEio;
      });
}

uint32_t VdiIo::Discard(uint64_t offset, uint64_t len, LuFence fence) {
  return ForEachPiece(
      offset, len, true, [&](uint32_t idx, uint64_t obj_off, uint64_t, uint64_t n, bool whole) {
        for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
          const Snapshot at = At(idx);
          uint32_t rc;
          if (whole) {
            rc = Exec([&](SyncClient& c) {
              proto::Header h;
              h.opcode = proto::op::kDiscardObj;
              Tag(fence).ApplyTo(h);
              h.set_oid(proto::VidToDataOid(at.vid, idx));
              return c.Request(h).result();
            });
            if (rc == res::kSuccess) {
              std::unique_lock lk(mu_);
              if (inode_.vdi_id == at.vid) inode_.data_vdi_id[idx] = 0;
            }
          } else if (at.owner != 0) {
            // Part of a mapped object: zeros (an unmapped range reads as zeros already).
            const std::vector<uint8_t> zeros(n, 0);
            rc = WriteObject(idx, obj_off, zeros, fence);
          } else {
            rc = Exec([&](SyncClient& c) { return CheckFresh(c, at.vid, fence); });
          }
          if (rc != res::kReadonly && rc != res::kInodeInvalidated) return rc;
          if (const uint32_t r = Refresh(at.gen, rc == res::kReadonly); r != res::kSuccess)
            return r;
        }
        return res::kEio;
      });
}

uint32_t VdiIo::MapStatus(uint64_t offset, uint64_t len, bool* mapped, uint64_t* run,
                          LuFence fence) {
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    uint64_t seen;
    uint32_t vid;
    {
      std::shared_lock lk(mu_);
      seen = gen_;
      vid = inode_.vdi_id;
      const uint64_t obj_size = inode_.object_size();
      const auto is_mapped = [&](uint64_t pos) {
        const uint64_t idx = pos / obj_size;
        return idx < inode_.data_vdi_id.size() && inode_.data_vdi_id[idx] != 0;
      };
      *mapped = is_mapped(offset);
      uint64_t pos = offset;
      while (pos < offset + len && is_mapped(pos) == *mapped) {
        pos = (pos / obj_size + 1) * obj_size;
      }
      *run = std::max<uint64_t>(1, std::min(pos, offset + len) - offset);
    }
    if (*mapped && !fence) return res::kSuccess;
    // Unmapped is asked of the sheep; so is mapped when fenced (the fence must be checked).
    const uint32_t rc = Exec([&](SyncClient& c) { return CheckFresh(c, vid, fence); });
    if (rc != res::kInodeInvalidated) return rc;
    if (const uint32_t r = Refresh(seen, false); r != res::kSuccess) return r;
  }
  return res::kEio;
}

uint32_t VdiIo::Flush(LuFence fence) {
  const uint32_t vid = this->vid();
  return Exec([&](SyncClient& c) {
    proto::Header h;
    h.opcode = proto::op::kFlushVdi;
    ObjTag(0, fence).ApplyTo(h);
    h.set_oid(proto::VidToInodeOid(vid));  // as sheepdog's clients name it
    return c.Request(h).result();
  });
}

}  // namespace kelpie::client

namespace kelpie::client {

bool VdiIo::OneObject(uint64_t offset, uint64_t len, bool writing, uint32_t* idx, uint64_t* obj_off,
                      Snapshot* at) const {
  uint64_t obj_size;
  if (len == 0 || CheckRange(offset, len, writing, &obj_size) != res::kSuccess) return false;
  if (offset / obj_size != (offset + len - 1) / obj_size) return false;
  *idx = uint32_t(offset / obj_size);
  *obj_off = offset % obj_size;
  *at = At(*idx);
  return true;
}

bool VdiIo::StartObjectRequest(PipelinedConnection& conn, const proto::Header& h,
                               std::span<const uint8_t> out, std::span<uint8_t> in,
                               StartDone done) {
  if (relock_.load()) return false;
  const uint32_t expect = uint32_t(in.size());
  conn.Start(h, out, in, [this, expect, done = std::move(done)](const proto::Header& rsp) {
    uint32_t rc = rsp.result();
    if (rc == res::kSuccess && rsp.data_length != expect) rc = res::kEio;  // a short read
    if (rc == res::kNetwork) relock_ = true;
    done(rc);
  });
  return true;
}

bool VdiIo::StartRead(PipelinedConnection& conn, uint64_t offset, std::span<uint8_t> out,
                      LuFence fence, StartDone done) {
  uint32_t idx;
  uint64_t obj_off;
  Snapshot at;
  // An index never written is asked about first (Read): not for this path.
  if (!OneObject(offset, out.size(), false, &idx, &obj_off, &at) || at.owner == 0) return false;
  proto::Header h;
  h.opcode = proto::op::kReadObj;
  Tag(fence).ApplyTo(h);
  h.set_oid(proto::VidToDataOid(at.owner, idx));
  h.set_offset(uint32_t(obj_off));
  h.data_length = uint32_t(out.size());
  return StartObjectRequest(conn, h, {}, out, std::move(done));
}

bool VdiIo::StartWrite(PipelinedConnection& conn, uint64_t offset, std::span<const uint8_t> data,
                       LuFence fence, bool write_back, StartDone done) {
  uint32_t idx;
  uint64_t obj_off;
  Snapshot at;
  if (!OneObject(offset, data.size(), true, &idx, &obj_off, &at) || at.owner != at.vid) {
    return false;
  }
  proto::Header h;
  h.opcode = proto::op::kWriteObj;
  Tag(fence, write_back).ApplyTo(h);
  h.set_oid(proto::VidToDataOid(at.vid, idx));
  h.set_offset(uint32_t(obj_off));
  return StartObjectRequest(conn, h, data, {}, std::move(done));
}

}  // namespace kelpie::client
