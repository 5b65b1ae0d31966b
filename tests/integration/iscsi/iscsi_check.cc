// iscsi_check: libiscsi-driven checks the integration tests run against kelpie-iscsi, for what
// the stock libiscsi tools cannot do from the command line.
//   iscsi_check pr URL_A URL_B
//       a persistent reservation taken through target A binds target B (one LU, two targets).
//   iscsi_check login URL [TARGET_USER TARGET_SECRET]
//       logs in (CHAP from the URL; mutual CHAP when the target's credentials are given), reads
//       block 0, logs out.
// Exit code 0 when every step behaved, 1 (with the failing step on stderr) otherwise.
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void Fail(const std::string& what, iscsi_context* ctx = nullptr) {
  std::fprintf(stderr, "FAIL: %s%s%s\n", what.c_str(), ctx ? ": " : "",
               ctx ? iscsi_get_error(ctx) : "");
  std::exit(1);
}

struct Path {
  iscsi_context* ctx = nullptr;
  int lun = 0;
  std::string name;
};

Path Connect(const char* url_text, const char* initiator, const char* tuser = nullptr,
             const char* tpass = nullptr) {
  Path p;
  p.name = initiator;
  p.ctx = iscsi_create_context(initiator);
  if (p.ctx == nullptr) Fail("create context");
  iscsi_url* url = iscsi_parse_full_url(p.ctx, url_text);
  if (url == nullptr) Fail(std::string("parse ") + url_text, p.ctx);
  iscsi_set_targetname(p.ctx, url->target);
  iscsi_set_session_type(p.ctx, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(p.ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
  if (url->user[0] != '\0' &&
      iscsi_set_initiator_username_pwd(p.ctx, url->user, url->passwd) != 0) {
    Fail("set CHAP", p.ctx);
  }
  if (tuser != nullptr && iscsi_set_target_username_pwd(p.ctx, tuser, tpass) != 0) {
    Fail("set mutual CHAP", p.ctx);
  }
  if (iscsi_full_connect_sync(p.ctx, url->portal, url->lun) != 0) {
    Fail(std::string("login to ") + url_text, p.ctx);
  }
  p.lun = url->lun;
  iscsi_destroy_url(url);
  // Clear the unit attentions of a fresh nexus.
  for (int i = 0; i < 10; ++i) {
    scsi_task* t = iscsi_testunitready_sync(p.ctx, p.lun);
    const bool good = t != nullptr && t->status == SCSI_STATUS_GOOD;
    if (t) scsi_free_scsi_task(t);
    if (good) return p;
  }
  Fail(p.name + ": TEST UNIT READY never GOOD");
}

int Status(scsi_task* t) {
  const int s = t ? t->status : -1;
  if (t) scsi_free_scsi_task(t);
  return s;
}

void Expect(const Path& p, const char* what, scsi_task* t, int want) {
  const int got = Status(t);
  if (got != want) {
    Fail(p.name + ": " + what + ": status " + std::to_string(got) + ", want " +
         std::to_string(want));
  }
  std::printf("ok: %s: %s\n", p.name.c_str(), what);
}

scsi_task* Prout(const Path& p, int sa, int type, uint64_t key, uint64_t sa_key) {
  scsi_persistent_reserve_out_basic params{};
  params.reservation_key = key;
  params.service_action_reservation_key = sa_key;
  return iscsi_persistent_reserve_out_sync(p.ctx, p.lun, sa, SCSI_PERSISTENT_RESERVE_SCOPE_LU, type,
                                           &params);
}

int Pr(const char* url_a, const char* url_b) {
  const Path a = Connect(url_a, "iqn.2026-11.io.kelpie.test:pr-a");
  const Path b = Connect(url_b, "iqn.2026-11.io.kelpie.test:pr-b");
  constexpr uint64_t kKey = 0xA11CE5;
  constexpr int kWe = SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE;
  Expect(a, "register key", Prout(a, SCSI_PERSISTENT_RESERVE_REGISTER, 0, 0, kKey),
         SCSI_STATUS_GOOD);
  Expect(a, "reserve write exclusive", Prout(a, SCSI_PERSISTENT_RESERVE_RESERVE, kWe, kKey, 0),
         SCSI_STATUS_GOOD);

  scsi_task* t =
      iscsi_persistent_reserve_in_sync(b.ctx, b.lun, SCSI_PERSISTENT_RESERVE_READ_KEYS, 1024);
  if (t == nullptr || t->status != SCSI_STATUS_GOOD) Fail("B: read keys", b.ctx);
  auto* keys = static_cast<scsi_persistent_reserve_in_read_keys*>(scsi_datain_unmarshall(t));
  if (keys == nullptr || keys->num_keys != 1 || keys->keys[0] != kKey) {
    Fail("B does not see A's registered key");
  }
  scsi_free_scsi_task(t);
  std::printf("ok: B sees key %#llx\n", static_cast<unsigned long long>(kKey));
  t = iscsi_persistent_reserve_in_sync(b.ctx, b.lun, SCSI_PERSISTENT_RESERVE_READ_RESERVATION,
                                       1024);
  if (t == nullptr || t->status != SCSI_STATUS_GOOD) Fail("B: read reservation", b.ctx);
  auto* rr = static_cast<scsi_persistent_reserve_in_read_reservation*>(scsi_datain_unmarshall(t));
  if (rr == nullptr || rr->reserved == 0 || rr->reservation_key != kKey || rr->pr_type != kWe) {
    Fail("B does not see A's write-exclusive reservation");
  }
  scsi_free_scsi_task(t);
  std::printf("ok: B sees the reservation\n");

  std::vector<unsigned char> block(512, 0x5B);
  Expect(b, "write while A holds WRITE EXCLUSIVE",
         iscsi_write10_sync(b.ctx, b.lun, 0, block.data(), 512, 512, 0, 0, 0, 0, 0),
         SCSI_STATUS_RESERVATION_CONFLICT);
  Expect(b, "read while A holds WRITE EXCLUSIVE",
         iscsi_read10_sync(b.ctx, b.lun, 0, 512, 512, 0, 0, 0, 0, 0), SCSI_STATUS_GOOD);
  Expect(a, "write as the holder",
         iscsi_write10_sync(a.ctx, a.lun, 1, block.data(), 512, 512, 0, 0, 0, 0, 0),
         SCSI_STATUS_GOOD);
  Expect(a, "release", Prout(a, SCSI_PERSISTENT_RESERVE_RELEASE, kWe, kKey, 0), SCSI_STATUS_GOOD);
  Expect(b, "write after A released",
         iscsi_write10_sync(b.ctx, b.lun, 0, block.data(), 512, 512, 0, 0, 0, 0, 0),
         SCSI_STATUS_GOOD);
  Expect(a, "unregister", Prout(a, SCSI_PERSISTENT_RESERVE_REGISTER, 0, kKey, 0), SCSI_STATUS_GOOD);
  iscsi_logout_sync(a.ctx);
  iscsi_logout_sync(b.ctx);
  iscsi_destroy_context(a.ctx);
  iscsi_destroy_context(b.ctx);
  return 0;
}

int Login(const char* url, const char* tuser, const char* tpass) {
  const Path p = Connect(url, "iqn.2026-11.io.kelpie.test:login", tuser, tpass);
  Expect(p, "read block 0", iscsi_read10_sync(p.ctx, p.lun, 0, 512, 512, 0, 0, 0, 0, 0),
         SCSI_STATUS_GOOD);
  iscsi_logout_sync(p.ctx);
  iscsi_destroy_context(p.ctx);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "pr") == 0) return Pr(argv[2], argv[3]);
  if (argc == 3 && std::strcmp(argv[1], "login") == 0) return Login(argv[2], nullptr, nullptr);
  if (argc == 5 && std::strcmp(argv[1], "login") == 0) return Login(argv[2], argv[3], argv[4]);
  std::fprintf(stderr,
               "usage: iscsi_check pr URL_A URL_B | login URL [TARGET_USER TARGET_SECRET]\n");
  return 2;
}
