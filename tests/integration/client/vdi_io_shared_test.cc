// The client library's shared-lock mode against two real sheep: two VdiIo participants on one
// VDI, each through its own sheep. B never reads stale data after A's copy-on-write, and both
// follow a snapshot taken between their writes. The sheep are started here (free loopback
// ports, own local-driver file) and killed by PID at the end.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/connection_pool.h"
#include "client/pipelined_connection.h"
#include "client/sync_client.h"
#include "client/vdi_io.h"
#include "proto/constants.h"
#include "proto/oid.h"

namespace kelpie::client {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kMiB = 1 << 20;

// A loopback port nobody listens on: the kernel's pick for a socket bound to port 0.
uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

class TwoSheep : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kelpie-vdiio-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const char* bin = std::getenv("KELPIE_BIN");
    ASSERT_NE(bin, nullptr) << "KELPIE_BIN must name the directory holding sheep";
    for (int i = 0; i < 2; ++i) {
      ports_[i] = FreePort();
      ASSERT_NE(ports_[i], 0);
      const std::string sheep = std::string(bin) + "/sheep";
      const std::string port = std::to_string(ports_[i]), zone = std::to_string(i + 1);
      const std::string cluster = "local:" + (dir_ / "shm").string();
      const std::string data = (dir_ / ("sheep" + std::to_string(i))).string();
      const pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // gone with the test, even if it crashes
        ::execl(sheep.c_str(), "sheep", "-f", "-p", port.c_str(), "-z", zone.c_str(), "-c",
                cluster.c_str(), data.c_str(), static_cast<char*>(nullptr));
        _exit(127);
      }
      pids_[i] = pid;
    }
    // Bounded wait for both to serve, then format.
    for (int i = 0; i < 2; ++i) {
      bool up = false;
      for (int t = 0; t < 300 && !up; ++t) {
        try {
          SyncClient probe("127.0.0.1", ports_[i]);
          up = true;
        } catch (const NetworkError&) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
      ASSERT_TRUE(up) << "sheep on port " << ports_[i] << " did not start";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // both joined
    SyncClient admin("127.0.0.1", ports_[0]);
    const nlohmann::json body = {
        {"copies", 2}, {"copy_policy", 0}, {"block_size_shift", 22}, {"lock", true}};
    ASSERT_EQ(admin.Admin(proto::op::kMakeFs, body.dump(), nullptr), proto::res::kSuccess);
  }

  void TearDown() override {
    for (pid_t pid : pids_) {
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
    fs::remove_all(dir_);
  }

  uint32_t NewVdi(SyncClient& c, const std::string& name, uint64_t size, uint32_t snap_of = 0) {
    proto::Header h;
    h.opcode = proto::op::kNewVdi;
    h.set_vdi_size(size);
    if (snap_of != 0) {
      h.set_snapid(1);
      h.set_base_vdi_id(snap_of);
    }
    return c.Request(h, VdiNamePayload(name, "", false)).result();
  }

  fs::path dir_;
  uint16_t ports_[2] = {0, 0};
  pid_t pids_[2] = {-1, -1};
};

std::vector<uint8_t> Pattern(size_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

TEST_F(TwoSheep, SharedParticipantsNeverReadStale) {
  namespace res = proto::res;
  SyncClient ca("127.0.0.1", ports_[0]), cb("127.0.0.1", ports_[1]), admin("127.0.0.1", ports_[0]);
  ASSERT_EQ(NewVdi(admin, "v", 64 * kMiB), res::kSuccess);
  {
    VdiIo w(admin, "v");
    ASSERT_EQ(w.Open(), res::kSuccess);
    ASSERT_EQ(w.Write(0, Pattern(8 * kMiB, 0x11)), res::kSuccess);
  }
  VdiIo a(ca, "v", "", 0, VdiIo::Mode::kShared), b(cb, "v", "", 0, VdiIo::Mode::kShared);
  ASSERT_EQ(a.Open(), res::kSuccess);
  ASSERT_EQ(b.Open(), res::kSuccess);
  std::vector<uint8_t> got(4096);

  ASSERT_EQ(b.Read(0, got), res::kSuccess);
  EXPECT_EQ(got, Pattern(4096, 0x11));
  ASSERT_EQ(a.Write(0, Pattern(4096, 0x22)), res::kSuccess);
  ASSERT_EQ(b.Read(0, got), res::kSuccess);
  EXPECT_EQ(got, Pattern(4096, 0x22));

  // A snapshot between two writes: A's next write goes to the new working VDI (READONLY, then
  // re-resolve), and B, still holding the old inode, must see it.
  uint32_t vid = a.vid();
  ASSERT_EQ(NewVdi(admin, "v", 0, vid), res::kSuccess);
  ASSERT_EQ(a.Write(4096, Pattern(4096, 0x33)), res::kSuccess);
  EXPECT_NE(a.vid(), vid);
  ASSERT_EQ(b.Read(4096, got), res::kSuccess);
  EXPECT_EQ(got, Pattern(4096, 0x33));
  EXPECT_EQ(b.vid(), a.vid());
  // An index never written, then written by A: B's zeros are not trusted blindly.
  ASSERT_EQ(b.Read(40 * kMiB, got), res::kSuccess);
  EXPECT_EQ(got, Pattern(4096, 0));
  ASSERT_EQ(a.Write(40 * kMiB, Pattern(4096, 0x44)), res::kSuccess);
  ASSERT_EQ(b.Read(40 * kMiB, got), res::kSuccess);
  EXPECT_EQ(got, Pattern(4096, 0x44));
  // B writes, A reads.
  ASSERT_EQ(b.Write(20 * kMiB, Pattern(4096, 0x55)), res::kSuccess);
  ASSERT_EQ(a.Read(20 * kMiB, got), res::kSuccess);
  EXPECT_EQ(got, Pattern(4096, 0x55));
  EXPECT_EQ(a.Close(), res::kSuccess);
  EXPECT_EQ(b.Close(), res::kSuccess);
}

// The non-blocking path (VdiIo::StartRead / StartWrite over a PipelinedConnection, as
// kelpie-iscsi's I/O thread uses it) is the same participant as the process's pooled
// connections: it is refused with INODE_INVALIDATED after another participant's copy-on-write,
// never answered from the old object, and declines what needs the blocking path.
TEST_F(TwoSheep, NonBlockingPathNeverReadsStale) {
  namespace res = proto::res;
  constexpr uint32_t kPending = 0xFFFFFFFF;
  SyncClient ca("127.0.0.1", ports_[0]), admin("127.0.0.1", ports_[0]);
  ASSERT_EQ(NewVdi(admin, "v", 64 * kMiB), res::kSuccess);
  {
    VdiIo w(admin, "v");
    ASSERT_EQ(w.Open(), res::kSuccess);
    ASSERT_EQ(w.Write(0, Pattern(8 * kMiB, 0x11)), res::kSuccess);
  }
  VdiIo a(ca, "v", "", 0, VdiIo::Mode::kShared);
  ASSERT_EQ(a.Open(), res::kSuccess);
  ConnectionPool pool({"127.0.0.1:" + std::to_string(ports_[1])}, "nonblocking-b");
  VdiIo b(pool, "v", "", 0, VdiIo::Mode::kShared);
  ASSERT_EQ(b.Open(), res::kSuccess);
  asio::io_context loop;
  PipelinedConnection conn(loop.get_executor(), b.lock_endpoint(), "nonblocking-b");
  // Runs one non-blocking call to its end: its code, or kPending when it declined.
  const auto finish = [&](auto start) {
    uint32_t rc = kPending;
    if (!start([&rc](uint32_t r) { rc = r; })) return kPending;
    loop.restart();
    for (int i = 0; i < 100000 && rc == kPending; ++i) loop.run_one_for(std::chrono::seconds(1));
    EXPECT_NE(rc, kPending) << "no answer";
    return rc;
  };
  std::vector<uint8_t> got(4096);
  const auto fast_read = [&](uint64_t off) {
    return finish([&](auto done) { return b.StartRead(conn, off, got, {}, done); });
  };

  ASSERT_EQ(fast_read(0), res::kSuccess);
  EXPECT_EQ(got, Pattern(4096, 0x11));
  ASSERT_EQ(a.Write(0, Pattern(4096, 0x22)), res::kSuccess);  // an overwrite: same object
  ASSERT_EQ(fast_read(0), res::kSuccess);
  EXPECT_EQ(got, Pattern(4096, 0x22));

  // A snapshot, then A's write copies object 0 into the new working VDI: B's cached inode
  // still names the old object, and the sheep refuses B's read of it.
  ASSERT_EQ(NewVdi(admin, "v", 0, a.vid()), res::kSuccess);
  ASSERT_EQ(a.Write(4096, Pattern(4096, 0x33)), res::kSuccess);
  EXPECT_EQ(fast_read(4096), res::kInodeInvalidated);
  ASSERT_EQ(b.Read(4096, got), res::kSuccess);  // the blocking path reloads
  EXPECT_EQ(got, Pattern(4096, 0x33));
  ASSERT_EQ(fast_read(4096), res::kSuccess);
  EXPECT_EQ(got, Pattern(4096, 0x33));

  // B writes where its VDI owns the object; A reads it.
  const auto data = Pattern(4096, 0x66);
  ASSERT_EQ(finish([&](auto done) { return b.StartWrite(conn, 8192, data, {}, true, done); }),
            res::kSuccess);
  ASSERT_EQ(a.Read(8192, got), res::kSuccess);
  EXPECT_EQ(got, Pattern(4096, 0x66));
  // Declined: a write that must copy (object 1 still belongs to the snapshot), a read of an
  // index never written, a range across two objects.
  EXPECT_EQ(finish([&](auto done) { return b.StartWrite(conn, 4 * kMiB, data, {}, true, done); }),
            kPending);
  EXPECT_EQ(fast_read(40 * kMiB), kPending);
  EXPECT_EQ(fast_read(4 * kMiB - 2048), kPending);
  EXPECT_EQ(conn.in_flight(), 0u);
  EXPECT_EQ(a.Close(), res::kSuccess);
  EXPECT_EQ(b.Close(), res::kSuccess);
}

// A PipelinedConnection keeps many requests in flight and matches each reply to its request;
// when the sheep goes away, every request in flight ends with kNetwork and none hangs.
TEST_F(TwoSheep, PipelinedRequestsAnswerInAnyOrderAndFailTogether) {
  namespace res = proto::res;
  SyncClient admin("127.0.0.1", ports_[0]);
  ASSERT_EQ(NewVdi(admin, "p", 16 * kMiB), res::kSuccess);
  VdiIo w(admin, "p");
  ASSERT_EQ(w.Open(), res::kSuccess);
  std::vector<uint8_t> all(8 * kMiB);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint8_t(i * 7 + i / 4096);
  ASSERT_EQ(w.Write(0, all), res::kSuccess);

  asio::io_context loop;
  PipelinedConnection conn(loop.get_executor(), "127.0.0.1:" + std::to_string(ports_[1]), "");
  constexpr int kRequests = 64;
  std::vector<std::vector<uint8_t>> bufs(kRequests);
  std::vector<uint32_t> codes(kRequests, 0xFFFFFFFF);
  for (int i = 0; i < kRequests; ++i) {
    // Sizes from 512 bytes to 1 MiB: replies larger than the read buffer included.
    const uint32_t len = i % 4 == 3 ? 1u << 20 : 512u << (i % 4);
    const uint64_t off = uint64_t(i) * 65536 % (3 * kMiB);
    bufs[i].resize(len);
    proto::Header h;
    h.opcode = proto::op::kReadObj;
    h.set_oid(proto::VidToDataOid(w.vid(), uint32_t(i % 2)));
    h.set_offset(uint32_t(off));
    h.data_length = len;
    conn.Start(h, {}, bufs[i], [&codes, i](const proto::Header& rsp) { codes[i] = rsp.result(); });
  }
  EXPECT_EQ(conn.in_flight(), size_t(kRequests));
  for (int t = 0; t < 1000 && conn.in_flight() > 0; ++t) loop.run_one_for(std::chrono::seconds(1));
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(codes[i], res::kSuccess) << i;
    const uint64_t off = uint64_t(i) * 65536 % (3 * kMiB) + (i % 2) * 4 * kMiB;
    EXPECT_TRUE(std::equal(bufs[i].begin(), bufs[i].end(), all.begin() + off)) << i;
  }

  // The sheep dies: requests on the broken connection, and those that find no sheep to
  // connect to, end with kNetwork.
  ::kill(pids_[1], SIGKILL);
  ::waitpid(pids_[1], nullptr, 0);
  pids_[1] = -1;
  std::fill(codes.begin(), codes.end(), 0xFFFFFFFF);
  for (int i = 0; i < 8; ++i) {
    proto::Header h;
    h.opcode = proto::op::kReadObj;
    h.set_oid(proto::VidToDataOid(w.vid(), 0));
    h.data_length = 4096;
    conn.Start(h, {}, bufs[i], [&codes, i](const proto::Header& rsp) { codes[i] = rsp.result(); });
  }
  for (int t = 0; t < 100 && conn.in_flight() > 0; ++t) loop.run_one_for(std::chrono::seconds(1));
  EXPECT_EQ(conn.in_flight(), 0u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(codes[i], res::kNetwork) << i;
}

}  // namespace
}  // namespace kelpie::client
