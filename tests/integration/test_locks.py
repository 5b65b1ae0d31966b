"""VDI locks as cluster state: normal locks are exclusive and released when their holder goes
away or by `dog vdi lock unlock`; shared locks list every participant with its state; the lock
table is the same through every sheep and survives a restart of the whole cluster."""
import os
import subprocess
import sys
import unittest

import sdproto
from kelpie_harness import Cluster, KelpieTest, wait_until


class Locks(KelpieTest, unittest.TestCase):
    def rows(self, c, port=None):
        out = c.dog_ok("vdi", "lock", "list", "-r", port=port).decode()
        return sorted(tuple(l.split()) for l in out.splitlines())

    def test_normal_and_shared_locks(self):
        c = Cluster(self.procs, self.work.path, nodes=3, copies=3)
        c.dog_ok("vdi", "create", "n", "16M")
        c.dog_ok("vdi", "create", "s", "16M")

        holder = sdproto.Conn(c.ports[0])
        self.assertEqual(holder.set_client_id("holder"), 0)
        other = sdproto.Conn(c.ports[1])
        self.assertEqual(other.set_client_id("other"), 0)
        self.assertEqual(holder.lock_vdi("n")[0], 0)
        self.assertEqual(holder.lock_vdi("n")[0], 0)                         # again: fine
        self.assertEqual(other.lock_vdi("n")[0], sdproto.RES_VDI_LOCKED)    # exclusive
        self.assertEqual(other.lock_vdi("n", lock_type=1)[0], sdproto.RES_VDI_LOCKED)
        # A bad client id is refused.
        self.assertEqual(other.set_client_id("a/b"), sdproto.RES_INVALID_PARMS)

        self.assertEqual(holder.lock_vdi("s", lock_type=1)[0], 0)
        self.assertEqual(other.lock_vdi("s", lock_type=1)[0], 0)
        rows = self.rows(c)
        self.assertEqual(rows, self.rows(c, port=c.ports[2]))               # same on every sheep
        shared = [r for r in rows if r[0] == "s"]
        self.assertEqual(len(shared), 2)
        self.assertEqual({r[3] for r in shared},
                         {"127.0.0.1:%d/127.0.0.1#holder" % c.ports[0],
                          "127.0.0.1:%d/127.0.0.1#other" % c.ports[1]})
        self.assertEqual({r[4] for r in shared}, {"modified", "invalidated"})
        self.assertIn(("n",) + rows[0][1:2] + ("normal",), [r[:3] for r in rows])

        # The holder goes away: its normal lock is released, its shared participation dropped.
        holder.close()
        wait_until(lambda: [r[0] for r in self.rows(c)] == ["s"], 20, "the holder's locks released")
        self.assertEqual(other.lock_vdi("n")[0], 0)

        # Kept across a restart of the whole cluster.
        before = self.rows(c)
        c.dog_ok("cluster", "shutdown")
        for i in range(3):
            wait_until(lambda: c.sheep[i].poll() is not None, 20, "sheep %d to stop" % i)
        other.close()
        for i in range(3):
            c.start_node(i)
        c.wait_nodes(3)
        self.assertEqual(self.rows(c), before)

        # dog vdi lock unlock releases any lock by hand.
        c.dog_ok("vdi", "lock", "unlock", "n")
        c.dog_ok("vdi", "lock", "unlock", "s")
        self.assertEqual(self.rows(c), [])
        r = c.dog(["vdi", "lock", "unlock", "n"])
        self.assertNotEqual(r.returncode, 0)

    def test_clients_of_one_gateway_are_told_apart(self):
        # Two processes, one sheep, no client ids: the sheep finds each connection's process.
        c = Cluster(self.procs, self.work.path, nodes=2, copies=2)
        c.dog_ok("vdi", "create", "v", "16M")
        script = ("import sdproto, sys, time\n"
                  "conns = [sdproto.Conn(%d) for _ in range(3)]\n"   # several connections each
                  "assert conns[1].lock_vdi('v', lock_type=1)[0] == 0\n"
                  "print('locked', flush=True)\n"
                  "time.sleep(60)\n" % c.ports[0])
        clients = []
        for _ in range(2):
            p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                 env=dict(os.environ))
            self.procs.procs.append(p)
            self.assertEqual(p.stdout.readline().strip(), b"locked")
            clients.append(p)
        rows = self.rows(c)
        self.assertEqual({r[3] for r in rows},
                         {"127.0.0.1:%d/127.0.0.1#pid%d" % (c.ports[0], p.pid) for p in clients})
        self.assertEqual(sorted(r[4] for r in rows), ["invalidated", "modified"])
        # One of them dies: only its participation goes.
        clients[0].kill()
        clients[0].wait(5)
        wait_until(lambda: len(self.rows(c)) == 1, 20, "the dead client's participant dropped")
        self.assertEqual(self.rows(c)[0][3], "127.0.0.1:%d/127.0.0.1#pid%d" % (c.ports[0],
                                                                              clients[1].pid))
        for p in clients:
            p.stdout.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
