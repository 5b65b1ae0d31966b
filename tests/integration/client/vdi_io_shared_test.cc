// The client library's shared-lock mode against two real sheep: two VdiIo participants on one
// VDI, each through its own sheep. B never reads stale data after A's copy-on-write, and both
// follow a snapshot taken between their writes. The sheep are started here (free loopback
// ports, own local-driver file) and killed by PID at the end.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/sync_client.h"
#include "client/vdi_io.h"
#include "proto/constants.h"

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

}  // namespace
}  // namespace kelpie::client
