"""dog for operators: `dog ... --json` parsed by Python's json and checked against the cluster's
state; progress bars drawn only when stderr is a terminal (piped output unchanged)."""
import json
import os
import pty
import subprocess
import threading
import time
import unittest

import sdproto
from kelpie_harness import DOG, Cluster, KelpieTest

MiB = 1 << 20


class DogJson(KelpieTest, unittest.TestCase):
    def test_json_output_matches_the_cluster(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=2)
        c.dog_ok("vdi", "create", "a", "64M")
        c.dog_ok("vdi", "write", "a", str(4 * MiB), input=b"\x11" * 4096)
        c.dog_ok("vdi", "snapshot", "-s", "s1", "a")
        c.dog_ok("vdi", "clone", "-s", "s1", "a", "b")
        c.dog_ok("vdi", "create", "-c", "1", "one", "8M")

        def js(*args):
            return json.loads(c.dog_ok(*args, "--json"))

        vdis = js("vdi", "list")["vdis"]
        by = {(v["name"], v["type"]): v for v in vdis}
        self.assertEqual(set(by), {("a", "snapshot"), ("a", "working"), ("b", "clone"),
                                   ("one", "working")})
        snap, cur, clone = by[("a", "snapshot")], by[("a", "working")], by[("b", "clone")]
        self.assertEqual(snap["tag"], "s1")
        self.assertEqual((snap["size"], snap["used"], snap["shared"]), (64 * MiB, 4 * MiB, 0))
        self.assertEqual((cur["used"], cur["shared"]), (0, 4 * MiB))
        self.assertEqual(clone["parent_vdi_id"], snap["vdi_id"])
        self.assertEqual(cur["parent_vdi_id"], snap["vdi_id"])
        self.assertEqual((cur["copies"], by[("one", "working")]["copies"]), (2, 1))
        self.assertEqual(cur["block_size_shift"], 22)
        self.assertLessEqual(abs(cur["created"] - time.time()), 600)
        # Every VDI id agrees with the raw listing.
        raw = {l.split(" ")[7] for l in c.dog_ok("vdi", "list", "-r").decode().splitlines()}
        self.assertEqual({"%x" % v["vdi_id"] for v in vdis}, raw)
        self.assertEqual([v["name"] for v in js("vdi", "list", "b")["vdis"]], ["b"])

        nodes = js("node", "list")["nodes"]
        self.assertEqual([(n["index"], n["addr"], n["port"], n["id"]) for n in nodes],
                         [(i, "127.0.0.1", p, "127.0.0.1:%d" % p)
                          for i, p in enumerate(sorted(c.ports))])
        self.assertEqual(sorted(n["zone"] for n in nodes), [1, 2, 3])
        self.assertTrue(all(n["vnodes"] == 128 for n in nodes))

        info = js("cluster", "info")
        self.assertEqual((info["status"], info["copies"], info["block_size_shift"]),
                         ("running", 2, 22))
        self.assertEqual(info["epoch"], info["epochs"][0]["epoch"])
        self.assertEqual(sorted(info["epochs"][0]["nodes"]),
                         sorted("127.0.0.1:%d" % p for p in c.ports))
        self.assertLessEqual(abs(info["created"] - time.time()), 600)

        rec = js("node", "recovery")["nodes"]
        self.assertEqual([n["port"] for n in rec], sorted(c.ports))
        for n in rec:
            self.assertIs(n["recovering"], False)
            self.assertEqual(n["epoch"], info["epoch"])
            self.assertIsInstance(n["done"], int)
            self.assertIsInstance(n["total"], int)

        self.assertEqual(js("vdi", "lock", "list"), {"locks": []})
        holder = sdproto.Conn(c.ports[0])
        other = sdproto.Conn(c.ports[1])
        try:
            self.assertEqual(holder.set_client_id("holder"), 0)
            self.assertEqual(other.set_client_id("other"), 0)
            self.assertEqual(holder.lock_vdi("one")[0], 0)
            self.assertEqual(holder.lock_vdi("b", lock_type=1)[0], 0)
            self.assertEqual(other.lock_vdi("b", lock_type=1)[0], 0)
            locks = {l["name"]: l for l in js("vdi", "lock", "list")["locks"]}
            self.assertEqual(set(locks), {"one", "b"})
            self.assertEqual(locks["one"]["type"], "normal")
            self.assertEqual(locks["b"]["type"], "shared")
            self.assertEqual(locks["b"]["vdi_id"], clone["vdi_id"])
            self.assertEqual({p["client"]: p["state"] for p in locks["b"]["participants"]},
                             {"127.0.0.1:%d/127.0.0.1#holder" % c.ports[0]: "modified",
                              "127.0.0.1:%d/127.0.0.1#other" % c.ports[1]: "invalidated"})
        finally:
            holder.close()
            other.close()
        # --json is refused where it means nothing, with the usage exit code.
        self.assertEqual(c.dog(["vdi", "create", "x", "1M", "--json"]).returncode, 64)
        self.check_progress(c)

    def check_progress(self, c):
        """Piped, dog's long commands print exactly what they did before (nothing on stderr);
        with stderr on a terminal they draw a bar there and stdout stays the same."""
        data = os.urandom(9 * MiB + 123)
        c.dog_ok("vdi", "create", "p", "16M")
        for args, inp in ((["vdi", "write", "p", "0"], data), (["vdi", "read", "p", "0", str(len(data))], None),
                          (["vdi", "check", "p"], None), (["node", "recovery", "--watch"], None)):
            r = c.dog(args, input=inp)
            self.assertEqual((r.returncode, r.stderr), (0, b""), args)
        self.assertEqual(c.dog_ok("vdi", "read", "p", "0", str(len(data))), data)
        self.assertEqual(c.dog_ok("vdi", "check", "p"), b"finish check&repair p\n")
        out, bar = dog_with_tty_stderr(c, ["vdi", "read", "p", "0", str(len(data))])
        self.assertEqual(out, data)
        self.assertIn("read p [", bar)
        self.assertIn("100.0%  9.0 MB / 9.0 MB", bar)
        out, bar = dog_with_tty_stderr(c, ["vdi", "write", "p", "0"], data[::-1])
        self.assertEqual((out, c.dog_ok("vdi", "read", "p", "0", str(len(data)))), (b"", data[::-1]))
        self.assertIn("write p [", bar)
        out, bar = dog_with_tty_stderr(c, ["vdi", "check", "p"])
        self.assertEqual(out, b"finish check&repair p\n")
        self.assertIn("check p [==============================] 100.0%  4 / 4 objects", bar)


def dog_with_tty_stderr(c, args, data=None):
    """Runs dog with stderr on a pseudo-terminal: (stdout bytes, what the terminal got)."""
    master, slave = pty.openpty()
    term = []

    def drain():  # until EIO: the terminal's last writer is gone
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            term.append(chunk)
    reader = threading.Thread(target=drain)
    reader.start()
    try:
        p = subprocess.Popen([DOG] + args + ["-p", str(c.ports[0])], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        slave = -1
        out, _ = p.communicate(data, timeout=120)
    finally:
        if slave >= 0:
            os.close(slave)
        reader.join(30)
        os.close(master)
    text = b"".join(term).decode(errors="replace")
    assert p.returncode == 0, (args, text)
    return out, text


if __name__ == "__main__":
    unittest.main(verbosity=2)
