// VdiCatalog: the cluster's table of VDIs (names, tags, snapshot ids, parents), replicated on every
// sheep and changed only by ordered cluster operations, so every sheep resolves a name to the same
// vid. The in-use bitmap (READ_VDIS) is derived from it: a deleted VDI keeps its bit so its vid is
// never reused while its objects may still exist.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace kelpie::sheep {

struct VdiEntry {
  uint32_t vid = 0;
  std::string name;
  std::string tag;
  uint32_t snap_id = 1;
  uint32_t parent_vid = 0;
  bool snapshot = false;
  bool deleted = false;
  uint8_t nr_copies = 0;
  uint8_t copy_policy = 0;
  uint8_t block_size_shift = 22;
  uint64_t create_time = 0;  // sec<<32 | nsec, as in the inode
  uint64_t snap_ctime = 0;
};

// Arguments of NEW_VDI once decoded (fresh create, clone, or snapshot of the working VDI).
struct NewVdiArgs {
  std::string name;
  std::string tag;        // snapshot: the tag the old working VDI gets
  uint32_t base_vid = 0;  // clone source, or (snapshot) the current working vid
  bool snapshot = false;
  uint8_t nr_copies = 0;
  uint8_t copy_policy = 0;
  uint8_t block_size_shift = 22;
  uint64_t now = 0;  // creation time chosen by the gateway (sec<<32 | nsec)
};

struct NewVdiResult {
  uint32_t result = 0;  // proto::res code
  uint32_t vid = 0;     // the new (working) vid
  uint32_t snap_id = 0;
};

class VdiCatalog {
 public:
  const VdiEntry* Find(uint32_t vid) const;
  // Resolves as GET_VDI_INFO does: a tag or snapid selects a snapshot of that name, otherwise
  // the working VDI. Returns kSuccess, kNoVdi or kNoTag.
  uint32_t Lookup(const std::string& name, const std::string& tag, uint32_t snapid,
                  uint32_t* vid) const;
  NewVdiResult Create(const NewVdiArgs& args);
  // Marks the VDI deleted; returns the result code and its vid.
  uint32_t Delete(const std::string& name, const std::string& tag, uint32_t snapid, uint32_t* vid);
  // True if a VDI that is not deleted has `vid` as an ancestor (its objects are still shared).
  bool HasLiveDescendant(uint32_t vid) const;
  // The 2^24-bit in-use bitmap, bit i of byte i/8 (little-endian bit order, as sheepdog).
  std::vector<uint8_t> Bitmap() const;
  const std::map<uint32_t, VdiEntry>& entries() const { return entries_; }
  void Clear() { entries_.clear(); }

  nlohmann::json ToJson() const;
  void FromJson(const nlohmann::json& j);

 private:
  std::map<uint32_t, VdiEntry> entries_;  // every vid ever allocated since format
};

}  // namespace kelpie::sheep
