#include "client/vdi_io.h"

#include <algorithm>
#include <cstring>

#include "proto/constants.h"
#include "proto/oid.h"

namespace kelpie::client {

namespace res = proto::res;

namespace {
constexpr int kMaxRetries = 16;  // re-resolutions before giving up on a churning VDI
}

VdiIo::VdiIo(SyncClient& conn, std::string name, std::string tag, uint32_t snapid, Mode mode)
    : conn_(conn), name_(std::move(name)), tag_(std::move(tag)), snapid_(snapid), mode_(mode) {}

uint16_t VdiIo::io_flags() const { return mode_ == Mode::kShared ? proto::flag::kTgt : 0; }

uint32_t VdiIo::Resolve(uint32_t* vid) {
  proto::Header h;
  h.opcode = mode_ == Mode::kShared ? proto::op::kLockVdi : proto::op::kGetVdiInfo;
  if (mode_ == Mode::kShared) h.set_lock_type(proto::kLockShared);
  h.set_snapid(snapid_);
  const proto::Header rsp = conn_.Request(h, VdiNamePayload(name_, tag_));
  *vid = rsp.rsp_vdi_id();
  return rsp.result();
}

uint32_t VdiIo::Open() {
  uint32_t vid = 0;
  if (const uint32_t rc = Resolve(&vid); rc != res::kSuccess) return rc;
  inode_.vdi_id = vid;
  return Reload();
}

uint32_t VdiIo::Close() {
  if (mode_ != Mode::kShared || inode_.vdi_id == 0) return res::kSuccess;
  proto::Header h;
  h.opcode = proto::op::kReleaseVdi;
  h.set_lock_type(proto::kLockShared);
  h.set_base_vdi_id(inode_.vdi_id);
  const uint32_t rc = conn_.Request(h).result();
  return rc == res::kVdiNotLocked ? res::kSuccess : rc;
}

uint32_t VdiIo::Reload() {
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    std::vector<uint8_t> b;
    const uint32_t rc = conn_.ReadObj(proto::VidToInodeOid(inode_.vdi_id), 0,
                                      proto::kInodeRefreshSize, b, io_flags());
    if (rc != res::kSuccess) return rc;
    if (!proto::DecodeInode(b, inode_)) return res::kEio;
    // A participant's working VDI that became a snapshot: follow the name to the new one.
    if (mode_ != Mode::kShared || !inode_.is_snapshot() || !tag_.empty() || snapid_ != 0) {
      return res::kSuccess;
    }
    uint32_t nvid = 0;
    if (const uint32_t r = Resolve(&nvid); r != res::kSuccess) return r;
    inode_.vdi_id = nvid;
  }
  return res::kEio;
}

uint32_t VdiIo::CheckFresh() {
  if (mode_ != Mode::kShared) return res::kSuccess;
  std::vector<uint8_t> probe;
  return conn_.ReadObj(proto::VidToInodeOid(inode_.vdi_id), 0, 1, probe, io_flags());
}

uint32_t VdiIo::Read(uint64_t offset, std::span<uint8_t> out) {
  if (offset + out.size() > inode_.vdi_size) return res::kInvalidParms;
  const uint64_t obj_size = inode_.object_size();
  size_t done = 0;
  while (done < out.size()) {
    const uint64_t pos = offset + done;
    const uint32_t idx = uint32_t(pos / obj_size);
    const uint64_t obj_off = pos % obj_size;
    const size_t n = size_t(std::min<uint64_t>(obj_size - obj_off, out.size() - done));
    uint32_t rc = res::kSuccess;
    for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
      const uint32_t owner = inode_.data_vdi_id[idx];
      std::vector<uint8_t> buf;
      if (owner == 0) {
        // Never written, as far as this inode knows; a participant asks whether it still knows.
        rc = CheckFresh();
        if (rc == res::kSuccess) std::memset(out.data() + done, 0, n);
      } else {
        rc = conn_.ReadObj(proto::VidToDataOid(owner, idx), obj_off, uint32_t(n), buf, io_flags());
        if (rc == res::kSuccess) std::memcpy(out.data() + done, buf.data(), n);
      }
      if (rc == res::kInodeInvalidated) {
        if (const uint32_t r = Reload(); r != res::kSuccess) return r;
        continue;
      }
      break;
    }
    if (rc != res::kSuccess) return rc;
    done += n;
  }
  return res::kSuccess;
}

uint32_t VdiIo::WriteObject(uint32_t idx, uint64_t obj_off, std::span<const uint8_t> data) {
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    const uint32_t vid = inode_.vdi_id;
    const uint32_t owner = inode_.data_vdi_id[idx];
    const uint64_t oid = proto::VidToDataOid(vid, idx);
    uint32_t rc;
    if (owner == vid) {
      rc = conn_.WriteObj(oid, obj_off, data, false, 0, io_flags());
    } else {
      const uint64_t cow = owner != 0 ? proto::VidToDataOid(owner, idx) : 0;
      rc = conn_.WriteObj(oid, obj_off, data, true, cow, io_flags());
      if (rc == res::kSuccess) {
        // Record the new owner in the inode's index table.
        inode_.data_vdi_id[idx] = vid;
        uint8_t entry[4];
        proto::StoreLE<uint32_t>(entry, vid);
        rc = conn_.WriteObj(proto::VidToInodeOid(vid), proto::inode_off::kDataVdiId + 4ull * idx,
                            entry, false, 0, io_flags());
      }
    }
    if (rc == res::kReadonly) {
      // A snapshot was taken: the name now resolves to a new working VDI.
      uint32_t nvid = 0;
      if (const uint32_t r = Resolve(&nvid); r != res::kSuccess) return r;
      inode_.vdi_id = nvid;
      if (const uint32_t r = Reload(); r != res::kSuccess) return r;
      continue;
    }
    if (rc == res::kInodeInvalidated) {
      if (const uint32_t r = Reload(); r != res::kSuccess) return r;
      continue;
    }
    return rc;
  }
  return res::kEio;
}

uint32_t VdiIo::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (inode_.is_snapshot()) return res::kReadonly;
  if (offset + data.size() > inode_.vdi_size) return res::kInvalidParms;
  const uint64_t obj_size = inode_.object_size();
  size_t done = 0;
  while (done < data.size()) {
    const uint64_t pos = offset + done;
    const uint32_t idx = uint32_t(pos / obj_size);
    const uint64_t obj_off = pos % obj_size;
    const size_t n = size_t(std::min<uint64_t>(obj_size - obj_off, data.size() - done));
    if (const uint32_t rc = WriteObject(idx, obj_off, data.subspan(done, n)); rc != res::kSuccess)
      return rc;
    done += n;
  }
  return res::kSuccess;
}

}  // namespace kelpie::client
