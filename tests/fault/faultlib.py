"""Pieces the fault tests share: the verified_load tool as a background write load, the cycle
count (KELPIE_FAULT_CYCLES; make soak raises it), and the summary line each test appends to
KELPIE_FAULT_REPORT for make soak's table."""
import json
import os
import subprocess
import threading
import time

from kelpie_harness import BIN, wait_until

VERIFIED_LOAD = os.path.join(BIN, "verified_load")


def cycles(default=5):
    return int(os.environ.get("KELPIE_FAULT_CYCLES", default))


def soak():
    return os.environ.get("KELPIE_SOAK") == "1"


def report(test, cycles, acked, lost, blocks_verified, **extra):
    """Prints a summary line and appends it to $KELPIE_FAULT_REPORT (make soak's table)."""
    row = dict(test=test, cycles=cycles, acked=acked, lost=lost, blocks_verified=blocks_verified,
               **extra)
    print("FAULT SUMMARY", json.dumps(row))
    path = os.environ.get("KELPIE_FAULT_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def verify_everywhere(test, cluster, load, vdi):
    """Every written block through every sheep, then dog vdi check; returns the blocks verified
    and the lost (or garbage) ones."""
    verified, bad = 0, []
    for port in cluster.ports:
        summary, lines = load.verify(port)
        print("verify via %d: %s" % (port, summary))
        verified += summary["ok"]
        bad += lines
    check = cluster.dog(["vdi", "check", vdi])
    test.assertEqual(check.returncode, 0, check.stderr)
    test.assertNotIn(b"fixed", check.stdout, check.stdout)
    return verified, bad


class VerifiedLoad:
    """verified_load write (tests/fault/verified_load.cc) against a VDI through the given sheep,
    running in the background from construction until stop(). Registered with procs, so it is
    killed by PID at the end of the test also on failure."""

    def __init__(self, procs, workdir, ports, vdi, threads=4, seed=None, name="load"):
        self.ports = list(ports)
        self.vdi = vdi
        self.journal = os.path.join(workdir, "%s.journal" % name)
        self.log = os.path.join(workdir, "%s.out" % name)
        seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
        args = [VERIFIED_LOAD, "write", "--sheep", self.endpoints(self.ports), "--vdi", vdi,
                "--journal", self.journal, "--threads", str(threads), "--seed", str(seed)]
        print("load: seed %d" % seed)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log)
        self.proc.log_path = self.log
        procs.procs.append(self.proc)
        self.progress = {"acked": 0, "failed_attempts": 0}
        self.summary = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    @staticmethod
    def endpoints(ports):
        return ",".join("127.0.0.1:%d" % p for p in ports)

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            if msg.get("progress"):
                self.progress = msg
            else:
                self.summary = msg

    def acked(self):
        if self.proc.poll() is not None and self.summary is None:
            raise AssertionError("verified_load exited with %s; see %s"
                                 % (self.proc.returncode, self.log))
        return self.progress["acked"]

    def wait_acked(self, more, timeout=60, what="writes"):
        """Waits until `more` further writes were acknowledged; returns how long it took."""
        t0, base = time.time(), self.acked()
        wait_until(lambda: self.acked() >= base + more, timeout,
                   "%d acknowledged %s (load log %s)" % (more, what, self.log))
        return time.time() - t0

    def stop(self, timeout=180):
        """Ends the load (in-flight writes finish or are given up) and returns its summary."""
        self.proc.stdin.close()
        self.proc.wait(timeout)
        self.reader.join(10)
        if self.proc.returncode != 0 or self.summary is None:
            raise AssertionError("verified_load ended with %s; see %s"
                                 % (self.proc.returncode, self.log))
        print("load:", json.dumps(self.summary))
        return self.summary

    def verify(self, port):
        """Reads every written block through sheep `port` alone; returns (summary, bad lines)."""
        r = subprocess.run([VERIFIED_LOAD, "verify", "--sheep", self.endpoints([port]), "--vdi",
                            self.vdi, "--journal", self.journal],
                           capture_output=True, timeout=300)
        lines = r.stdout.decode(errors="replace").splitlines()
        if not lines or not lines[-1].startswith("{"):
            raise AssertionError("verified_load verify via %d failed (%d): %s"
                                 % (port, r.returncode, r.stderr.decode(errors="replace")))
        return json.loads(lines[-1]), lines[:-1]
