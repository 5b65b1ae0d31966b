// dog vdi create | list | delete | snapshot | clone | resize | read | write | object | tree |
// check | lock list | lock unlock
#include <fmt/format.h>
#include <unistd.h>

#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "client/units.h"
#include "client/vdi_io.h"
#include "dog/dog.h"
#include "dog/progress.h"
#include "proto/constants.h"
#include "proto/inode.h"
#include "proto/oid.h"

namespace kelpie::dog {

using client::StrNumber;
using client::SyncClient;
using nlohmann::json;
using proto::Inode;
namespace res = proto::res;

namespace {

// "-s TAG": a number names a snapshot id, anything else a tag (as sheepdog).
void SplitSnapshot(const std::string& s, std::string& tag, uint32_t& snapid) {
  tag.clear();
  snapid = 0;
  if (s.empty()) return;
  if (s.find_first_not_of("0123456789") == std::string::npos && s.size() < 10) {
    snapid = uint32_t(std::stoul(s));
  } else {
    tag = s;
  }
}

std::string Describe(const std::string& name, const std::string& tag, uint32_t snapid) {
  if (snapid) return fmt::format("{} (snapid={})", name, snapid);
  if (!tag.empty()) return fmt::format("{} (tag={})", name, tag);
  return name;
}

uint32_t Lookup(SyncClient& c, const std::string& name, const std::string& tag, uint32_t snapid) {
  proto::Header h;
  h.opcode = proto::op::kGetVdiInfo;
  h.set_snapid(snapid);
  const proto::Header r = c.Request(h, client::VdiNamePayload(name, tag));
  if (r.result() == res::kNoVdi || r.result() == res::kNoTag) {
    throw DogError(kExitMissing,
                   fmt::format("Failed to open VDI {}: {}", Describe(name, tag, snapid),
                               proto::ResultText(r.result())));
  }
  Check(r.result(), "Failed to open VDI " + Describe(name, tag, snapid));
  return r.rsp_vdi_id();
}

Inode ReadInode(SyncClient& c, uint32_t vid, bool with_table) {
  std::vector<uint8_t> b;
  Check(c.ReadObj(proto::VidToInodeOid(vid), 0,
                  uint32_t(with_table ? proto::kInodeRefreshSize : proto::kInodeHeaderSize), b),
        fmt::format("Failed to read inode {:x}", vid));
  Inode in;
  if (!proto::DecodeInode(b, in)) throw DogError(kExitFailure, "Corrupt inode");
  return in;
}

// Every VDI that exists (not deleted), by vid.
std::map<uint32_t, Inode> AllVdis(SyncClient& c, bool with_table) {
  proto::Header h;
  h.opcode = proto::op::kReadVdis;
  h.data_length = proto::kNrVdis / 8;
  std::vector<uint8_t> bits;
  Check(c.Request(h, {}, &bits).result(), "Failed to read VDIs");
  std::map<uint32_t, Inode> out;
  for (uint32_t byte = 0; byte < bits.size(); ++byte) {
    if (bits[byte] == 0) continue;
    for (int bit = 0; bit < 8; ++bit) {
      if (!(bits[byte] & (1u << bit))) continue;
      const uint32_t vid = byte * 8 + uint32_t(bit);
      std::vector<uint8_t> b;
      const uint32_t len =
          uint32_t(with_table ? proto::kInodeRefreshSize : proto::kInodeHeaderSize);
      if (c.ReadObj(proto::VidToInodeOid(vid), 0, len, b) != res::kSuccess) continue;
      Inode in;
      if (proto::DecodeInode(b, in) && !in.name.empty()) out.emplace(vid, std::move(in));
    }
  }
  return out;
}

std::string CreateTime(const Inode& in, bool raw) {
  const time_t t = time_t(in.create_time >> 32);
  if (raw) return std::to_string(t);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M", &tm);
  return buf;
}

// What `vdi list` shows of a VDI besides its inode's own fields.
struct VdiUsage {
  uint64_t used = 0;    // bytes of the objects it owns
  uint64_t shared = 0;  // bytes of the objects it shares with its parent
  bool clone = false;
};

VdiUsage Usage(const Inode& in) {
  VdiUsage u;
  for (uint32_t owner : in.data_vdi_id) {
    if (owner == 0) continue;
    (owner == in.vdi_id ? u.used : u.shared) += in.object_size();
  }
  u.clone = in.snap_id == 1 && in.parent_vdi_id != 0;
  return u;
}

void PrintVdi(const Inode& in, bool raw) {
  const VdiUsage u = Usage(in);
  const char kind = in.is_snapshot() ? 's' : (u.clone ? 'c' : (raw ? '=' : ' '));
  if (raw) {
    fmt::print("{} {} {} {} {} {} {} {:x} {} {} {}\n", kind, in.name, in.snap_id,
               StrNumber(in.vdi_size, true), StrNumber(u.used, true), StrNumber(u.shared, true),
               CreateTime(in, true), in.vdi_id, RedundancyText(in.nr_copies, in.copy_policy),
               in.tag, int(in.block_size_shift));
  } else {
    fmt::print("{} {:<8} {:5} {:>7} {:>7} {:>7} {}  {:7x} {:>6} {:>13} {:3}\n", kind, in.name,
               in.snap_id, StrNumber(in.vdi_size, false), StrNumber(u.used, false),
               StrNumber(u.shared, false), CreateTime(in, false), in.vdi_id,
               RedundancyText(in.nr_copies, in.copy_policy), in.tag, int(in.block_size_shift));
  }
}

// A VDI in `vdi list --json`.
json VdiJson(const Inode& in) {
  const VdiUsage u = Usage(in);
  return {{"name", in.name},
          {"type", in.is_snapshot() ? "snapshot" : (u.clone ? "clone" : "working")},
          {"snapshot_id", in.snap_id},
          {"tag", in.tag},
          {"vdi_id", in.vdi_id},
          {"parent_vdi_id", in.parent_vdi_id},
          {"size", in.vdi_size},
          {"used", u.used},
          {"shared", u.shared},
          {"created", in.create_time >> 32},
          {"copies", int(in.nr_copies)},
          {"redundancy", RedundancyText(in.nr_copies, in.copy_policy)},
          {"block_size_shift", int(in.block_size_shift)}};
}

// Checks (and repairs) every copy of the inode and of every object the VDI maps.
int CheckVdi(Context& ctx, SyncClient& c, uint32_t vid, const std::string& name) {
  const Inode in = ReadInode(c, vid, true);
  std::vector<uint64_t> oids = {proto::VidToInodeOid(vid)};
  for (uint32_t idx = 0; idx < in.data_vdi_id.size(); ++idx) {
    if (in.data_vdi_id[idx] != 0) oids.push_back(proto::VidToDataOid(in.data_vdi_id[idx], idx));
  }
  int lost = 0;
  Progress progress("check " + name, oids.size(), Progress::Unit::kObjects);
  for (size_t i = 0; i < oids.size(); ++i) {
    const uint64_t oid = oids[i];
    std::string reply;
    Check(c.Admin(proto::op::kCheckObj, "", &reply, oid),
          fmt::format("Failed to check {:016x}", oid));
    progress.Update(i + 1);
    const json j = json::parse(reply);
    if (j.value("lost", false) || !j.at("missing").empty() || !j.at("repaired").empty())
      progress.Erase();
    if (j.value("lost", false)) {
      fmt::print("[{}] oid {:016x} is missing.\n", name, oid);
      ++lost;
      continue;
    }
    for (const auto& n : j.at("missing"))
      fmt::print("fixed missing {:016x} on {}\n", oid, n.get<std::string>());
    for (const auto& n : j.at("repaired"))
      fmt::print("fixed replica {:016x} on {}\n", oid, n.get<std::string>());
  }
  (void)ctx;
  if (lost != 0) {
    fmt::print("{} lost {} object(s).\n", name, lost);
    return kExitFailure;
  }
  fmt::print("finish check&repair {}\n", name);
  return 0;
}

// Reads all of stdin (or up to `limit` bytes).
std::vector<uint8_t> ReadStdin(uint64_t limit) {
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  while (out.size() < limit) {
    const ssize_t n = ::read(0, buf, size_t(std::min<uint64_t>(sizeof(buf), limit - out.size())));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

}  // namespace

void CheckAllVdis(Context& ctx) {
  auto c = ctx.Connect();
  int rc = 0;
  for (const auto& [vid, in] : AllVdis(*c, false))
    rc = std::max(rc, CheckVdi(ctx, *c, vid, in.name));
  if (rc != 0) throw DogError(rc, "Some objects are lost");
}

void AddVdiCommands(CLI::App& app, Context& ctx) {
  auto* vdi = app.add_subcommand("vdi", "virtual disk image commands");
  vdi->require_subcommand(1);
  struct Args {
    std::string name, name2, size, snapshot, offset, length;
    bool prealloc = false;
    std::string copies;
    int shift = 0;
    uint32_t index = UINT32_MAX;
  };
  auto a = std::make_shared<Args>();

  auto* create = vdi->add_subcommand("create", "create an image");
  create->add_flag("-P,--prealloc", a->prealloc, "preallocate every object");
  create->add_option("-c,--copies", a->copies,
                     "number of copies N, or D:P erasure coding (default: the cluster's)");
  create->add_option("-z,--block_size_shift", a->shift, "object size as a power of two");
  create->add_option("name", a->name)->required();
  create->add_option("size", a->size)->required();
  create->callback([&ctx, a] {
    const uint64_t size = SizeArg(a->size);
    const int shift = a->shift ? a->shift : proto::kDefaultBlockSizeShift;
    if (size == 0) throw DogError(kExitUsage, "VDI size must be larger than 0");
    if (size > proto::MaxVdiSize(uint8_t(shift))) {
      throw DogError(kExitUsage, fmt::format("VDI size is too large (max {})",
                                             StrNumber(proto::MaxVdiSize(uint8_t(shift)), false)));
    }
    if (a->name.size() >= proto::kMaxVdiLen) throw DogError(kExitUsage, "VDI name is too long");
    const Redundancy red = a->copies.empty() ? Redundancy{} : ParseRedundancy(a->copies);
    CheckZonesFor(ctx, red);
    auto c = ctx.Connect();
    proto::Header h;
    h.opcode = proto::op::kNewVdi;
    h.set_vdi_size(size);
    h.set_vdi_copies(uint8_t(red.copies));
    h.set_vdi_copy_policy(red.copy_policy);
    h.set_block_size_shift(uint8_t(a->shift));
    const proto::Header r = c->Request(h, client::VdiNamePayload(a->name, "", false));
    if (r.result() == res::kVdiExist)
      throw DogError(kExitExists, "VDI " + a->name + " already exists");
    Check(r.result(), "Failed to create VDI " + a->name);
    if (a->prealloc) {
      client::VdiIo io(*c, a->name);
      Check(io.Open(), "Failed to open VDI " + a->name);
      const uint64_t osz = io.inode().object_size();
      const std::vector<uint8_t> zeros(osz, 0);
      for (uint64_t off = 0; off < size; off += osz) {
        Check(io.Write(off, std::span(zeros.data(), size_t(std::min(osz, size - off)))),
              "Failed to preallocate");
      }
    }
  });

  auto* list = vdi->add_subcommand("list", "list images");
  AddJsonFlag(list, ctx);
  list->callback([&ctx, a] {
    auto c = ctx.Connect();
    if (ctx.json) {
      json out = json::array();
      for (const auto& [vid, in] : AllVdis(*c, true)) {
        if (a->name.empty() || in.name == a->name) out.push_back(VdiJson(in));
      }
      PrintJson({{"vdis", out}});
      return;
    }
    if (!ctx.raw) {
      fmt::print(
          "  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies  Tag   "
          "Block Size Shift\n");
    }
    for (const auto& [vid, in] : AllVdis(*c, true)) {
      if (!a->name.empty() && in.name != a->name) continue;
      PrintVdi(in, ctx.raw);
    }
  });
  list->add_option("name", a->name);

  auto* del = vdi->add_subcommand("delete", "delete an image or a snapshot");
  del->add_option("-s,--snapshot", a->snapshot, "snapshot tag or id");
  del->add_option("name", a->name)->required();
  del->callback([&ctx, a] {
    std::string tag;
    uint32_t snapid;
    SplitSnapshot(a->snapshot, tag, snapid);
    auto c = ctx.Connect();
    proto::Header h;
    h.opcode = proto::op::kDelVdi;
    h.set_snapid(snapid);
    const uint32_t rc = c->Request(h, client::VdiNamePayload(a->name, tag)).result();
    if (rc == res::kNoVdi || rc == res::kNoTag) {
      throw DogError(kExitMissing, "Failed to open VDI " + Describe(a->name, tag, snapid) + ": " +
                                       std::string(proto::ResultText(rc)));
    }
    Check(rc, "Failed to delete " + Describe(a->name, tag, snapid));
  });

  auto* snap = vdi->add_subcommand("snapshot", "take a snapshot of an image");
  snap->add_option("-s,--snapshot", a->snapshot, "snapshot tag");
  snap->add_option("name", a->name)->required();
  snap->callback([&ctx, a] {
    auto c = ctx.Connect();
    const uint32_t vid = Lookup(*c, a->name, "", 0);
    if (!a->snapshot.empty()) {
      std::string dummy;
      uint32_t snapid = 0;
      SplitSnapshot(a->snapshot, dummy, snapid);
      if (snapid != 0) throw DogError(kExitUsage, "A snapshot tag must not be a number");
      if (a->snapshot.size() >= proto::kMaxVdiTagLen)
        throw DogError(kExitUsage, "Snapshot tag is too long");
      proto::Header q;
      q.opcode = proto::op::kGetVdiInfo;
      if (c->Request(q, client::VdiNamePayload(a->name, a->snapshot)).result() == res::kSuccess) {
        throw DogError(kExitExists,
                       "Snapshot tag " + a->snapshot + " is already used for " + a->name);
      }
      // The tag goes into the working inode first; NEW_VDI then turns it into the snapshot.
      std::vector<uint8_t> tag(proto::kMaxVdiTagLen, 0);
      std::copy(a->snapshot.begin(), a->snapshot.end(), tag.begin());
      Check(c->WriteObj(proto::VidToInodeOid(vid), proto::inode_off::kTag, tag),
            "Failed to write the tag");
    }
    proto::Header h;
    h.opcode = proto::op::kNewVdi;
    h.set_snapid(1);
    h.set_base_vdi_id(vid);
    Check(c->Request(h, client::VdiNamePayload(a->name, "", false)).result(),
          "Failed to create snapshot for " + a->name);
  });

  auto* clone = vdi->add_subcommand("clone", "clone a snapshot into a new image");
  clone->add_option("-s,--snapshot", a->snapshot, "snapshot tag or id")->required();
  clone->add_option("src", a->name)->required();
  clone->add_option("dst", a->name2)->required();
  clone->callback([&ctx, a] {
    std::string tag;
    uint32_t snapid;
    SplitSnapshot(a->snapshot, tag, snapid);
    auto c = ctx.Connect();
    const uint32_t base = Lookup(*c, a->name, tag, snapid);
    const Inode in = ReadInode(*c, base, false);
    if (!in.is_snapshot()) throw DogError(kExitUsage, "Only snapshot VDIs can be cloned");
    proto::Header h;
    h.opcode = proto::op::kNewVdi;
    h.set_base_vdi_id(base);
    h.set_vdi_size(in.vdi_size);
    h.set_vdi_copies(in.nr_copies);
    h.set_vdi_copy_policy(in.copy_policy);
    const proto::Header r = c->Request(h, client::VdiNamePayload(a->name2, "", false));
    if (r.result() == res::kVdiExist)
      throw DogError(kExitExists, "VDI " + a->name2 + " already exists");
    Check(r.result(), "Failed to clone " + Describe(a->name, tag, snapid));
  });

  auto* resize = vdi->add_subcommand("resize", "resize an image");
  resize->add_option("name", a->name)->required();
  resize->add_option("size", a->size)->required();
  resize->callback([&ctx, a] {
    const uint64_t size = SizeArg(a->size);
    auto c = ctx.Connect();
    const uint32_t vid = Lookup(*c, a->name, "", 0);
    const Inode in = ReadInode(*c, vid, false);
    if (size < in.vdi_size) throw DogError(kExitUsage, "Shrinking VDIs is not implemented");
    if (size > proto::MaxVdiSize(in.block_size_shift))
      throw DogError(kExitUsage, "New VDI size is too large");
    uint8_t b[8];
    proto::StoreLE<uint64_t>(b, size);
    Check(c->WriteObj(proto::VidToInodeOid(vid), proto::inode_off::kVdiSize, b),
          "Failed to update the inode");
  });

  auto* read = vdi->add_subcommand("read", "read image data to stdout");
  read->add_option("-s,--snapshot", a->snapshot, "snapshot tag or id");
  read->add_option("name", a->name)->required();
  read->add_option("offset", a->offset);
  read->add_option("length", a->length);
  read->callback([&ctx, a] {
    std::string tag;
    uint32_t snapid;
    SplitSnapshot(a->snapshot, tag, snapid);
    auto c = ctx.Connect();
    Lookup(*c, a->name, tag, snapid);
    client::VdiIo io(*c, a->name, tag, snapid);
    Check(io.Open(), "Failed to open VDI " + a->name);
    const uint64_t off = a->offset.empty() ? 0 : SizeArg(a->offset);
    const uint64_t size = io.inode().vdi_size;
    if (off > size) throw DogError(kExitUsage, "Read offset is beyond the end of the VDI");
    const uint64_t len = a->length.empty() ? size - off : SizeArg(a->length);
    if (off + len > size) throw DogError(kExitUsage, "Read range is beyond the end of the VDI");
    std::vector<uint8_t> buf;
    Progress progress("read " + a->name, len, Progress::Unit::kBytes);
    for (uint64_t done = 0; done < len;) {
      buf.resize(size_t(std::min<uint64_t>(4u << 20, len - done)));
      Check(io.Read(off + done, buf), "Failed to read VDI " + a->name);
      for (size_t w = 0; w < buf.size();) {
        const ssize_t n = ::write(1, buf.data() + w, buf.size() - w);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw DogError(kExitSysfail, "Failed to write to stdout");
        w += size_t(n);
      }
      done += buf.size();
      progress.Update(done);
    }
  });

  auto* write = vdi->add_subcommand("write", "write stdin to an image");
  write->add_option("name", a->name)->required();
  write->add_option("offset", a->offset);
  write->add_option("length", a->length);
  write->callback([&ctx, a] {
    auto c = ctx.Connect();
    Lookup(*c, a->name, "", 0);
    client::VdiIo io(*c, a->name);
    Check(io.Open(), "Failed to open VDI " + a->name);
    const uint64_t off = a->offset.empty() ? 0 : SizeArg(a->offset);
    const uint64_t size = io.inode().vdi_size;
    if (off > size) throw DogError(kExitUsage, "Write offset is beyond the end of the VDI");
    const uint64_t limit = a->length.empty() ? size - off : SizeArg(a->length);
    if (off + limit > size) throw DogError(kExitUsage, "Write range is beyond the end of the VDI");
    // In object-sized pieces as stdin delivers them, so that progress can be shown.
    Progress progress("write " + a->name, limit, Progress::Unit::kBytes);
    const uint64_t piece = io.inode().object_size();
    for (uint64_t done = 0; done < limit;) {
      const std::vector<uint8_t> data = ReadStdin(std::min(piece, limit - done));
      if (data.empty()) break;
      Check(io.Write(off + done, data), "Failed to write VDI " + a->name);
      done += data.size();
      progress.Update(done);
    }
  });

  auto* object = vdi->add_subcommand("object", "show where an object of an image is stored");
  object->add_option("-i,--index", a->index, "data object index (default: the inode)");
  object->add_option("name", a->name)->required();
  object->callback([&ctx, a] {
    auto c = ctx.Connect();
    const uint32_t vid = Lookup(*c, a->name, "", 0);
    uint64_t oid = proto::VidToInodeOid(vid);
    if (a->index != UINT32_MAX) {
      const Inode in = ReadInode(*c, vid, true);
      if (a->index >= proto::kMaxDataObjs) throw DogError(kExitUsage, "The offset is too large!");
      const uint32_t owner = in.data_vdi_id[a->index];
      if (owner == 0) {
        fmt::print("The inode object 0x{:x} idx {} is not allocated\n", vid, a->index);
        return;
      }
      oid = proto::VidToDataOid(owner, a->index);
    }
    std::string reply;
    Check(c->Admin(proto::op::kObjLocate, "", &reply, oid), "Failed to locate the object");
    const json j = json::parse(reply);
    if (a->index == UINT32_MAX) {
      fmt::print("Looking for the inode object 0x{:x} with {} nodes\n\n", vid,
                 j.at("placement").size());
    } else {
      fmt::print(
          "Looking for the object 0x{:016x} (vid 0x{:x} idx {}, {} copies) with {} nodes\n\n", oid,
          proto::OidToVid(oid), a->index, j.at("copies").get<int>(), j.at("placement").size());
    }
    std::set<std::string> holders;
    for (const auto& h : j.at("holders")) holders.insert(h.get<std::string>());
    for (const auto& p : j.at("placement")) {
      const std::string n = p;
      fmt::print(
          fmt::runtime(holders.count(n) ? "{} has the object\n" : "{} doesn't have the object\n"),
          n);
    }
  });

  vdi->add_subcommand("tree", "show images as a tree")->callback([&ctx] {
    auto c = ctx.Connect();
    const auto vdis = AllVdis(*c, false);
    std::map<uint32_t, std::vector<uint32_t>> children;
    std::vector<uint32_t> roots;
    for (const auto& [vid, in] : vdis) {
      if (in.parent_vdi_id != 0 && vdis.count(in.parent_vdi_id)) {
        children[in.parent_vdi_id].push_back(vid);
      } else {
        roots.push_back(vid);
      }
    }
    std::function<void(uint32_t, const std::string&)> show = [&](uint32_t vid,
                                                                 const std::string& indent) {
      const Inode& in = vdis.at(vid);
      const std::string label =
          in.is_snapshot()
              ? fmt::format("{} ({})", in.name, in.tag.empty() ? CreateTime(in, false) : in.tag)
              : fmt::format("{} (you are here)", in.name);
      fmt::print("{}{}\n", indent, label);
      for (uint32_t ch : children[vid]) show(ch, indent + "  ");
    };
    for (uint32_t r : roots) show(r, "");
  });

  auto* check = vdi->add_subcommand("check", "check and repair every copy of an image's objects");
  check->add_option("-s,--snapshot", a->snapshot, "snapshot tag or id");
  check->add_option("name", a->name)->required();
  check->callback([&ctx, a] {
    std::string tag;
    uint32_t snapid;
    SplitSnapshot(a->snapshot, tag, snapid);
    auto c = ctx.Connect();
    const uint32_t vid = Lookup(*c, a->name, tag, snapid);
    if (const int rc = CheckVdi(ctx, *c, vid, a->name); rc != 0)
      throw DogError(rc, a->name + ": objects lost");
  });

  auto* lock = vdi->add_subcommand("lock", "VDI locks");
  lock->require_subcommand(1);
  auto* lock_list = lock->add_subcommand("list", "list locked VDIs");
  AddJsonFlag(lock_list, ctx);
  lock_list->callback([&ctx] {
    auto c = ctx.Connect();
    std::string reply;
    Check(c->Admin(proto::op::kLockList, "", &reply), "Failed to list locks");
    if (ctx.json) {
      json locks = json::array();
      for (const auto& l : json::parse(reply)) {
        json participants = json::array();
        for (const auto& p : l.at("participants"))
          participants.push_back({{"client", p.at("client")}, {"state", p.at("state")}});
        locks.push_back({{"name", l.at("name")},
                         {"vdi_id", l.at("vid")},
                         {"type", l.at("type")},
                         {"participants", participants}});
      }
      PrintJson({{"locks", locks}});
      return;
    }
    // One line per participant: the VDI, its lock type, the participant (gateway sheep / client
    // address[#pid]) and its coherence state (normal locks: "holder").
    if (!ctx.raw) {
      fmt::print("{:<16} {:>8} {:<7} {:<44} {}\n", "VDI", "VDI id", "Type", "Participant", "State");
    }
    for (const auto& l : json::parse(reply)) {
      const std::string name = l.at("name"), type = l.at("type");
      const uint32_t vid = l.at("vid");
      for (const auto& p : l.at("participants")) {
        const std::string who = p.at("client"), state = p.at("state");
        const std::string shown = type == "shared" ? state : "holder";
        fmt::print(fmt::runtime(ctx.raw ? "{} {:x} {} {} {}\n" : "{:<16} {:>8x} {:<7} {:<44} {}\n"),
                   name, vid, type, who, shown);
      }
    }
  });
  auto* unlock = lock->add_subcommand("unlock", "release every lock on an image");
  unlock->add_option("-s,--snapshot", a->snapshot, "snapshot tag or id");
  unlock->add_option("name", a->name)->required();
  unlock->callback([&ctx, a] {
    std::string tag;
    uint32_t snapid;
    SplitSnapshot(a->snapshot, tag, snapid);
    auto c = ctx.Connect();
    proto::Header h;
    h.opcode = proto::op::kLockUnlock;
    h.set_snapid(snapid);
    Check(c->Request(h, client::VdiNamePayload(a->name, tag)).result(),
          "Failed to unlock " + a->name);
  });
}

}  // namespace kelpie::dog
