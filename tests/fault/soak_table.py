"""Prints make soak's summary table from the JSON lines the fault tests appended to a report
file (faultlib.report), and exits 1 when any run lost a write or none reported at all."""
import json
import sys


def main(path):
    try:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        rows = []
    cols = ["test", "cycles", "acked", "lost", "blocks_verified", "failed_attempts"]
    heads = ["test", "cycles", "acknowledged writes", "lost writes", "blocks verified",
             "failed attempts"]
    table = [heads] + [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for n, row in enumerate(table):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    lost = sum(r.get("lost", 0) for r in rows)
    print("total: %d acknowledged writes, %d lost" % (sum(r.get("acked", 0) for r in rows), lost))
    return 1 if lost or not rows else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
