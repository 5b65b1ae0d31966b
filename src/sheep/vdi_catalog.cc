#include "sheep/vdi_catalog.h"

#include <nlohmann/json.hpp>

#include "proto/constants.h"
#include "proto/vdi_name.h"

namespace kelpie::sheep {

using proto::res::kNoTag;
using proto::res::kNoVdi;
using proto::res::kSuccess;

const VdiEntry* VdiCatalog::Find(uint32_t vid) const {
  auto it = entries_.find(vid);
  return it == entries_.end() ? nullptr : &it->second;
}

uint32_t VdiCatalog::Lookup(const std::string& name, const std::string& tag, uint32_t snapid,
                            uint32_t* vid) const {
  const bool want_snapshot = !tag.empty() || snapid != 0;
  bool name_found = false;
  for (const auto& [id, e] : entries_) {
    if (e.deleted || e.name != name) continue;
    name_found = true;
    if (!want_snapshot) {
      if (!e.snapshot) {
        *vid = id;
        return kSuccess;
      }
      continue;
    }
    // A snapid names any VDI of that name (the working one included); a tag names a snapshot.
    if ((snapid != 0 && e.snap_id == snapid) || (!tag.empty() && e.snapshot && e.tag == tag)) {
      *vid = id;
      return kSuccess;
    }
  }
  return (want_snapshot && name_found) ? kNoTag : kNoVdi;
}

NewVdiResult VdiCatalog::Create(const NewVdiArgs& a) {
  NewVdiResult r;
  uint32_t cur = 0;
  const uint32_t found = Lookup(a.name, "", 0, &cur);
  uint32_t next_snap_id = 1;
  for (const auto& [id, e] : entries_) {
    if (!e.deleted && e.name == a.name) next_snap_id = std::max(next_snap_id, e.snap_id + 1);
  }
  uint32_t parent = a.base_vid;
  if (a.snapshot) {
    if (found != kSuccess) {
      r.result = kNoVdi;
      return r;
    }
    if (a.base_vid != cur) {
      r.result = proto::res::kNoBaseVdi;
      return r;
    }
  } else {
    if (found == kSuccess) {
      r.result = proto::res::kVdiExist;
      return r;
    }
    if (a.base_vid != 0) {
      const VdiEntry* base = Find(a.base_vid);
      if (base == nullptr || base->deleted) {
        r.result = proto::res::kNoBaseVdi;
        return r;
      }
    }
  }
  // Open addressing from the name's hash: the first vid never used since format.
  uint32_t vid = proto::VdiNameHash(a.name);
  uint32_t probes = 0;
  while (entries_.count(vid) != 0) {
    vid = (vid + 1) & (proto::kNrVdis - 1);
    if (vid == 0) vid = 1;
    if (++probes >= proto::kNrVdis - 1) {
      r.result = proto::res::kFullVdi;
      return r;
    }
  }
  if (a.snapshot) {
    VdiEntry& old = entries_[cur];
    old.snapshot = true;
    old.tag = a.tag;
    old.snap_ctime = a.now;
  }
  VdiEntry e;
  e.vid = vid;
  e.name = a.name;
  e.snap_id = next_snap_id;  // the working VDI always has its name's highest snap_id
  e.parent_vid = parent;
  e.nr_copies = a.nr_copies;
  e.copy_policy = a.copy_policy;
  e.block_size_shift = a.block_size_shift;
  e.create_time = a.now;
  entries_[vid] = e;
  r.result = kSuccess;
  r.vid = vid;
  r.snap_id = e.snap_id;
  return r;
}

uint32_t VdiCatalog::Delete(const std::string& name, const std::string& tag, uint32_t snapid,
                            uint32_t* vid) {
  const uint32_t rc = Lookup(name, tag, snapid, vid);
  if (rc != kSuccess) return rc;
  entries_[*vid].deleted = true;
  return kSuccess;
}

bool VdiCatalog::HasLiveDescendant(uint32_t vid) const {
  for (const auto& [id, e] : entries_) {
    if (e.deleted || id == vid) continue;
    // Walk up the parent chain; bounded by the number of entries in case of a corrupt cycle.
    uint32_t p = e.parent_vid;
    for (size_t steps = 0; p != 0 && steps <= entries_.size(); ++steps) {
      if (p == vid) return true;
      const VdiEntry* pe = Find(p);
      p = pe ? pe->parent_vid : 0;
    }
  }
  return false;
}

std::vector<uint8_t> VdiCatalog::Bitmap() const {
  std::vector<uint8_t> bits(proto::kNrVdis / 8, 0);
  for (const auto& [id, e] : entries_) bits[id / 8] |= uint8_t(1u << (id % 8));
  return bits;
}

nlohmann::json VdiCatalog::ToJson() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& [id, e] : entries_) {
    arr.push_back({{"vid", e.vid},
                   {"name", e.name},
                   {"tag", e.tag},
                   {"snap_id", e.snap_id},
                   {"parent", e.parent_vid},
                   {"snapshot", e.snapshot},
                   {"deleted", e.deleted},
                   {"copies", e.nr_copies},
                   {"copy_policy", e.copy_policy},
                   {"bss", e.block_size_shift},
                   {"ctime", e.create_time},
                   {"snap_ctime", e.snap_ctime}});
  }
  return arr;
}

void VdiCatalog::FromJson(const nlohmann::json& j) {
  entries_.clear();
  for (const auto& x : j) {
    VdiEntry e;
    e.vid = x.at("vid");
    e.name = x.at("name");
    e.tag = x.at("tag");
    e.snap_id = x.at("snap_id");
    e.parent_vid = x.at("parent");
    e.snapshot = x.at("snapshot");
    e.deleted = x.at("deleted");
    e.nr_copies = x.at("copies");
    e.copy_policy = x.at("copy_policy");
    e.block_size_shift = x.at("bss");
    e.create_time = x.at("ctime");
    e.snap_ctime = x.value("snap_ctime", uint64_t(0));
    entries_[e.vid] = e;
  }
}

}  // namespace kelpie::sheep
