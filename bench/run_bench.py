#!/usr/bin/env python3
"""Kelpie benchmark: `qemu-img bench` over iSCSI against Kelpie and beside it the ceiling.

Starts, on loopback and free ports:
  - a 3-node, 3-copy Kelpie cluster (local driver) with one VDI, exported by kelpie-iscsi;
  - Debian tgtd serving a local file of the same size (the ceiling: 1 copy, no cluster);
  - Debian tgtd with its sheepdog backing store on the same Kelpie VDI;
  - kelpie-iscsi on a second VDI, erasure coded 2:1 (two data strips and one parity strip).
Fills the VDI and the file, then runs 4K random-ish reads and writes (step 64K) and 1M sequential
reads and writes: each test on every target in turn, for several rounds (the order rotated each
round), and prints a table with each figure (the median of the rounds), its ratio to the
file-backed tgtd (the median of the rounds' ratios) and the issue's targets for kelpie-iscsi,
every round's figures, the peak RSS (VmHWM) of kelpie-iscsi and of each sheep, and what the
machine and each daemon did during each run (CPU, I/O stall, disk traffic). Every process
started is stopped by PID at the end, also on failure.

Environment:
  KELPIE_BIN     directory with sheep, dog, kelpie-iscsi (default: build/bin)
  BENCH_QUICK=1  1/8 of the requests on a 256 MiB VDI (smoke run; one round)
  BENCH_ROUNDS=N rounds of every test on every target (default 3)
  BENCH_ONLY     comma-separated subset of targets: file,kelpie-iscsi,tgtd-sheepdog,ec
  BENCH_PERF=DIR record `perf record -g` of kelpie-iscsi and sheep 0 during kelpie-iscsi's first
                 round of each test into DIR (perf-<test>-<daemon>.data)
  BENCH_KEEP=1   keep the work directory (logs) even on success
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.environ.setdefault("KELPIE_BIN", os.path.join(ROOT, "build", "bin"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import kelpie_harness as kh  # noqa: E402  (reads KELPIE_BIN at import)

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "1" if QUICK else "3")))
SCALE = 8 if QUICK else 1
SIZE_MIB = 1024 // (4 if QUICK else 1)
VDI = "bench"
VDI_EC = "bench-ec"
CEILING = "tgtd file (ceiling)"  # the target every ratio is to

# name, args, count, unit. The 4K runs cover the whole disk (16384 x step 64K = 1 GiB).
TESTS = [
    ("4K read", ["-d", "32", "-s", "4k", "-S", "64k"], 16384 // SCALE, "IOPS", False),
    ("4K write", ["-d", "32", "-s", "4k", "-S", "64k"], 16384 // SCALE, "IOPS", True),
    ("1M read", ["-d", "8", "-s", "1M"], 1024 // SCALE, "MB/s", False),
    ("1M write", ["-d", "8", "-s", "1M"], 1024 // SCALE, "MB/s", True),
]
# The targets for kelpie-iscsi, as a fraction of the file-backed tgtd.
GOALS = {"4K read": 0.70, "4K write": 0.25, "1M read": 0.80, "1M write": 0.80}
BLOCK = {"4K read": 4096, "4K write": 4096, "1M read": 1 << 20, "1M write": 1 << 20}


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def qemu_bench(url, args, count, write, timeout=900):
    cmd = ["qemu-img", "bench", "-f", "raw", "-t", "none", "-c", str(count)] + args
    if write:
        cmd += ["-w", "--pattern=0xa5"]
    cmd.append(url)
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    m = re.search(r"Run completed in ([0-9.]+) seconds", out)
    if r.returncode != 0 or not m:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, out[-2000:]))
    secs = float(m.group(1))
    log("  %-9s %6d req in %7.2fs (wall %.1fs)" % ("write" if write else "read", count, secs,
                                                  time.time() - t0))
    return secs


def figure(test, count, secs):
    if BLOCK[test] == 4096:
        return count / secs  # IOPS
    return count * BLOCK[test] / secs / 1e6  # MB/s


def fill(url, size_mib):
    """Writes the whole disk once with 1M requests (allocates every object of a VDI)."""
    qemu_bench(url, ["-d", "8", "-s", "1M"], size_mib, True)


def vm_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_cpu_secs(pid):
    """utime + stime of a live process, in seconds (None when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def children_cpu_secs():
    """CPU seconds of this script's waited-for children (qemu-img)."""
    return sum(os.times()[2:4])


def _machine_counters():
    """Whole-VM counters the conditions line is made of (each cumulative)."""
    c = {}
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    c["busy"] = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    c["all"] = sum(ticks)
    c["iowait"] = ticks[4]
    try:
        with open("/proc/pressure/io") as f:
            c["io_stall_us"] = int(f.readline().rsplit("total=", 1)[1])
        with open("/proc/pressure/cpu") as f:
            c["cpu_stall_us"] = int(f.readline().rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        pass
    with open("/proc/vmstat") as f:
        for line in f:
            k, v = line.split()
            if k in ("pgpgin", "pgpgout"):
                c[k] = int(v)  # KiB
    c["children"] = children_cpu_secs()
    return c


class Conditions:
    """What the machine and each daemon did during one test, to tell noise from a stall.

    The VM's CPUs and disk are shared with other guests: a slow figure with the daemons' CPU low
    and I/O stall high is the host, one with a daemon's CPU high is Kelpie's own cost."""

    def __init__(self, daemons):
        self.daemons = daemons  # [(name, pid)]
        self.t0 = time.time()
        self.m0 = _machine_counters()
        self.d0 = {n: proc_cpu_secs(pid) for n, pid in daemons}

    def finish(self):
        wall = max(time.time() - self.t0, 1e-6)
        m1 = _machine_counters()
        d = {k: m1[k] - self.m0[k] for k in m1 if k in self.m0}
        cells = ["machine busy %d%%" % round(100 * d["busy"] / max(d["all"], 1)),
                 "iowait %d%%" % round(100 * d["iowait"] / max(d["all"], 1))]
        if "io_stall_us" in d:
            cells.append("io stall %d%%" % round(d["io_stall_us"] / 1e4 / wall))
            cells.append("cpu stall %d%%" % round(d["cpu_stall_us"] / 1e4 / wall))
        cells.append("disk read %d MB, written %d MB" % (d["pgpgin"] / 1024, d["pgpgout"] / 1024))
        cells.append("qemu-img cpu %d%%" % round(100 * d["children"] / wall))
        for name, pid in self.daemons:
            now = proc_cpu_secs(pid)
            if now is not None and self.d0[name] is not None:
                cells.append("%s cpu %d%%" % (name, round(100 * (now - self.d0[name]) / wall)))
        return "; ".join(cells)


class Perf:
    """perf record -g of some PIDs during one test; stopped by PID (SIGINT) at the end."""

    def __init__(self, procs, outdir, tag, pids):
        self.recs = []
        for name, pid in pids:
            path = os.path.join(outdir, "perf-%s-%s.data" % (tag, name))
            p = procs.start(["perf", "record", "-g", "-F", "499", "-o", path, "-p", str(pid)],
                            os.path.join(outdir, "perf-%s-%s.out" % (tag, name)))
            self.recs.append(p)
        time.sleep(1.0)  # let perf attach before the load starts

    def stop(self):
        for p in self.recs:
            kh.Procs.stop(p, sig=signal.SIGINT, timeout=60)


def _terminate(signum, _frame):
    # SIGTERM / SIGHUP (e.g. make interrupted): unwind so that every process is stopped by PID.
    raise SystemExit("bench: stopped by signal %d" % signum)


def main():
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    only = [t for t in os.environ.get("BENCH_ONLY", "").split(",") if t]
    perf_dir = os.environ.get("BENCH_PERF")
    if perf_dir:
        perf_dir = os.path.abspath(perf_dir)
        os.makedirs(perf_dir, exist_ok=True)
    for tool in ("qemu-img", "tgtd", "tgtadm"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit("bench: %s is missing (run `make deps`)" % tool)
    for b in (kh.SHEEP, kh.DOG, kh.KELPIE_ISCSI):
        if not os.access(b, os.X_OK):
            sys.exit("bench: %s is missing (run `make build`)" % b)

    work = kh.Workdir("bench")
    procs = kh.Procs()
    tgtds = []
    failed = True
    results = {}  # target -> test -> figure
    conditions = []  # (target, test, what the machine and daemons did)
    rss = []
    try:
        log("workdir %s; %s run: %d MiB disk, 1/%d of the requests" %
            (work.path, "quick" if QUICK else "full", SIZE_MIB, SCALE))
        cluster = kh.Cluster(procs, work.path, nodes=3, copies=3)
        cluster.dog_ok("vdi", "create", VDI, "%dM" % SIZE_MIB)
        log("cluster of 3 sheep (3 copies) on ports %s" % cluster.ports)

        targets = []  # (name, url)
        want = lambda n: not only or n in only  # noqa: E731

        if want("file"):
            img = os.path.join(work.path, "ceiling.img")
            with open(img, "wb") as f:
                f.truncate(SIZE_MIB << 20)
            t = kh.Tgtd(procs, work.path, name="tgtd-file")
            tgtds.append(t)
            url = t.export("iqn.2026-11.io.kelpie.bench:file", img)
            log("filling the file behind tgtd")
            fill(url, SIZE_MIB)
            targets.append((CEILING, url))

        exports = [VDI]
        if want("ec"):
            cluster.dog_ok("vdi", "create", "-c", "2:1", VDI_EC, "%dM" % SIZE_MIB)
            exports.append(VDI_EC)
        iscsi = kh.KelpieIscsi(procs, work.path, cluster.ports, exports=exports)
        kurl = iscsi.url(VDI)
        log("filling VDI %s through kelpie-iscsi" % VDI)
        t0 = time.time()
        fill(kurl, SIZE_MIB)
        log("fill took %.1fs" % (time.time() - t0))
        if want("kelpie-iscsi"):
            targets.append(("kelpie-iscsi", kurl))

        if want("tgtd-sheepdog"):
            t = kh.Tgtd(procs, work.path, name="tgtd-sheepdog")
            tgtds.append(t)
            url = t.export("iqn.2026-11.io.kelpie.bench:sd", "tcp:127.0.0.1:%d:%s" %
                           (cluster.ports[1], VDI), bstype="sheepdog")
            targets.append(("tgtd sheepdog on Kelpie", url))

        if want("ec"):
            eurl = iscsi.url(VDI_EC)
            log("filling VDI %s (erasure coded 2:1) through kelpie-iscsi" % VDI_EC)
            fill(eurl, SIZE_MIB)
            targets.append(("kelpie-iscsi, 2:1 erasure coded", eurl))

        daemons = [("kelpie-iscsi", iscsi.proc.pid)]
        daemons += [("sheep%d" % i, cluster.sheep[i].pid) for i in sorted(cluster.sheep)]
        daemons += [(os.path.basename(t.proc.log_path)[:-4], t.proc.pid) for t in tgtds]
        for name, url in targets:
            log("target %s: %s" % (name, url))
            results[name] = {}
        # Each test runs on every target in turn, ROUNDS times, the order rotated each round, so
        # that a burst of the host's noise lands on one round of one target, not on all its tests.
        for test, args, count, _unit, write in TESTS:
            for r in range(ROUNDS):
                for name, url in targets[r % len(targets):] + targets[:r % len(targets)]:
                    log("%s, %s (round %d of %d)" % (name, test, r + 1, ROUNDS))
                    perf = None
                    if perf_dir and name == "kelpie-iscsi" and r == 0:
                        tag = test.replace(" ", "-").lower()
                        perf = Perf(procs, perf_dir, tag, [("kelpie-iscsi", iscsi.proc.pid),
                                                           ("sheep0", cluster.sheep[0].pid)])
                    # The page cache's dirty bytes of the runs before (the 1M writes leave up
                    # to 3 GiB) are written out first, so that no target pays for another's.
                    os.sync()
                    cond = Conditions(daemons)
                    try:
                        secs = qemu_bench(url, args, count, write)
                    finally:
                        if perf:
                            perf.stop()
                    results[name].setdefault(test, []).append(figure(test, count, secs))
                    conditions.append((name, test, cond.finish()))
                    log("    %s" % conditions[-1][2])

        rss.append(("kelpie-iscsi", vm_hwm_kib(iscsi.proc.pid)))
        for i in sorted(cluster.sheep):
            rss.append(("sheep %d" % i, vm_hwm_kib(cluster.sheep[i].pid)))
        for t in tgtds:
            rss.append((os.path.basename(t.proc.log_path)[:-4], vm_hwm_kib(t.proc.pid)))
        failed = False
    finally:
        for t in tgtds:
            try:
                t.stop()
            except Exception as e:  # keep stopping the others
                print("bench: stopping tgtd: %s" % e, file=sys.stderr)
        procs.stop_all()
        keep = failed or os.environ.get("BENCH_KEEP", "") not in ("", "0")
        work.cleanup(keep)

    print_table(results, rss, conditions)


def round_ratios(name, test, results):
    """Each round's figure over the ceiling's of the same round ([] for the ceiling itself)."""
    ceiling = results.get(CEILING, {}).get(test, [])
    if name == CEILING:
        return []
    return [v / c for v, c in zip(results[name].get(test, []), ceiling)]


def print_table(results, rss, conditions):
    print()
    print("Kelpie bench (%s run: %d MiB disk; 4K: %d requests, depth 32, step 64K; "
          "1M: %d requests, depth 8; %d round%s)" % (
              "quick" if QUICK else "full", SIZE_MIB, 16384 // SCALE, 1024 // SCALE, ROUNDS,
              "" if ROUNDS == 1 else "s, each running every target in turn"))
    if ROUNDS > 1:
        print("Figures are the median of the rounds; a ratio is the median of the rounds' ratios "
              "(each to the file-backed tgtd of the same round).")
    print()
    print("| target | 4K read IOPS | 4K write IOPS | 1M read MB/s | 1M write MB/s |")
    print("|---|---|---|---|---|")
    for name, figs in results.items():
        cells = []
        for test, _a, _c, _u, _w in TESTS:
            rounds = figs.get(test)
            if not rounds:
                cells.append("-")
                continue
            s = "%.0f" % statistics.median(rounds)
            ratios = round_ratios(name, test, results)
            if ratios:
                ratio = statistics.median(ratios)
                s += " (%.2f×" % ratio
                if name == "kelpie-iscsi":
                    s += ", goal %.2f× %s" % (GOALS[test],
                                              "met" if ratio >= GOALS[test] else "NOT met")
                s += ")"
            cells.append(s)
        print("| %s | %s |" % (name, " | ".join(cells)))
    if ROUNDS > 1:
        print()
        print("Each round (figure, and ratio to the ceiling of that round):")
        for name, figs in results.items():
            for test, _a, _c, _u, _w in TESTS:
                ratios = round_ratios(name, test, results)
                cells = ["%.0f" % v + (" (%.2f×)" % ratios[i] if i < len(ratios) else "")
                         for i, v in enumerate(figs.get(test, []))]
                if cells:
                    print("- %s, %s: %s" % (name, test, ", ".join(cells)))
    print()
    print("| daemon | peak RSS (VmHWM) |")
    print("|---|---|")
    for name, kib in rss:
        print("| %s | %s |" % (name, "?" if kib is None else "%.1f MiB" % (kib / 1024)))
    over = [n for n, kib in rss if kib and kib > 256 * 1024 and not n.startswith("tgtd")]
    print()
    print("RSS bound (256 MiB per Kelpie daemon): %s" % ("NOT met: " + ", ".join(over)
                                                           if over else "met"))
    print()
    print("Conditions per test (CPU as % of one core; stalls from /proc/pressure):")
    for name, test, line in conditions:
        print("- %s, %s: %s" % (name, test, line))


if __name__ == "__main__":
    main()
