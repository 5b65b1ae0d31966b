#!/usr/bin/env python3
"""A/B of two kelpie-iscsi binaries on one cluster: `qemu-img bench` 4K reads (and optionally
writes) alternately through each, so the machine's noise hits both alike.

  KELPIE_BIN=DIR   sheep, dog and kelpie-iscsi for the cluster and for A
  AB_B=PATH        the kelpie-iscsi binary to compare (B)
  AB_ROUNDS=N      rounds (default 3); AB_WRITES=1 adds 4K writes; AB_MIB=N disk size (256)
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_bench as rb  # noqa: E402  (sets up kelpie_harness)

kh = rb.kh


def main():
    b_bin = os.environ["AB_B"]
    rounds = int(os.environ.get("AB_ROUNDS", "3"))
    mib = int(os.environ.get("AB_MIB", "256"))
    work = kh.Workdir("ab")
    procs = kh.Procs()
    failed = True
    figs = {"A": {}, "B": {}}
    try:
        c = kh.Cluster(procs, work.path, nodes=3, copies=3)
        c.dog_ok("vdi", "create", "ab", "%dM" % mib)
        a = kh.KelpieIscsi(procs, work.path, c.ports, exports=["ab"], name="iscsi-a")
        saved = kh.KELPIE_ISCSI
        kh.KELPIE_ISCSI = b_bin
        try:
            b = kh.KelpieIscsi(procs, work.path, c.ports, exports=["ab"], name="iscsi-b")
        finally:
            kh.KELPIE_ISCSI = saved
        rb.fill(a.url("ab"), mib)
        n = mib * 16  # 4K requests at step 64K over the whole disk
        tests = [("4K read", False)] + ([("4K write", True)] if os.environ.get("AB_WRITES") else [])
        for r in range(rounds):
            for tag, t in (("A", a), ("B", b)) if r % 2 == 0 else (("B", b), ("A", a)):
                for test, write in tests:
                    pids = [("iscsi", t.proc.pid)] + [("sheep%d" % i, c.sheep[i].pid)
                                                      for i in sorted(c.sheep)]
                    before = [rb.proc_cpu_secs(p) for _, p in pids]
                    q0 = rb.children_cpu_secs()
                    secs = rb.qemu_bench(t.url("ab"), ["-d", "32", "-s", "4k", "-S", "64k"], n,
                                         write)
                    cpu = [rb.proc_cpu_secs(p) - b for (_, p), b in zip(pids, before)]
                    figs[tag].setdefault(test, []).append(n / secs)
                    print("   %s %s CPU us/IO: %s qemu-img %.0f" % (
                        tag, test, " ".join("%s %.0f" % (nm, x * 1e6 / n)
                                            for (nm, _), x in zip(pids, cpu)),
                        (rb.children_cpu_secs() - q0) * 1e6 / n), flush=True)
        failed = False
    finally:
        procs.stop_all()
        work.cleanup(failed)
    for tag in ("A", "B"):
        for test, v in figs[tag].items():
            print("%s %-8s IOPS: %s  (median %.0f)" % (tag, test, " ".join("%.0f" % x for x in v),
                                                       sorted(v)[len(v) // 2]))


if __name__ == "__main__":
    main()
