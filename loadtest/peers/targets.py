#!/usr/bin/env python3
"""Trove beside the best peer, and issue #17's targets met or missed, from one peers.sh run.

usage: targets.py RUN_DIR
Reads RUN_DIR/results.jsonl (wrk hit runs and miss-overhead rows) and RUN_DIR/idle.jsonl (idle connections), and
prints Markdown: for each body size and connection count, each Trove target's median requests/s as a ratio to
the best of nginx and Varnish in the same run, its p99 beside theirs, then the targets of #17 one per line.
"""
import json
import os
import statistics
import sys

PEERS = ("nginx", "varnish")
# #17's targets: requests/s ratio to the best peer, by Trove target and body size.
RATIO_TARGETS = {
    ("trove-tracked", "2k"): 1.1, ("trove-tracked", "64k"): 1.1,
    ("trove-local", "2k"): 0.9, ("trove-local", "64k"): 1.0,
    ("trove-memory", "2k"): 1.1, ("trove-memory", "64k"): 1.1,
}
IDLE_TARGET_KIB = 2.0
MISS_TARGET_US = 300


def load(path):
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path) if line.strip()]


def main():
    run = sys.argv[1]
    records = [r for r in load(os.path.join(run, "results.jsonl")) if not r.get("discarded")]
    wrk = [r for r in records if r.get("kind") == "wrk" and r.get("result") and str(r.get("threads", "1")) == "1"]
    cells = {}
    for r in wrk:
        cells.setdefault((r["body"], int(r["conc"]), r["target"]), []).append(r["result"])
    out = []
    p = out.append
    verdicts = []
    p("### Trove beside the best peer (medians; wrk -t1)")
    p("")
    p("| body | conns | best peer | its req/s | its p99 ms | Trove target | req/s | ratio | p99 ms | target | |")
    p("|---|---:|---|---:|---:|---|---:|---:|---:|---:|---|")
    for body, conns in sorted({(b, c) for b, c, _ in cells}, key=lambda k: (k[0] != "2k", k[1])):
        peers = [(statistics.median(x["rps"] for x in cells[(body, conns, t)]), t) for t in PEERS if (body, conns, t) in cells]
        if not peers:
            continue
        best_rps, best = max(peers)
        best_p99 = statistics.median(x["p99_us"] for x in cells[(body, conns, best)]) / 1000
        for target in sorted(t for b, c, t in cells if b == body and c == conns and t.startswith("trove")):
            rps = statistics.median(x["rps"] for x in cells[(body, conns, target)])
            p99 = statistics.median(x["p99_us"] for x in cells[(body, conns, target)]) / 1000
            goal = RATIO_TARGETS.get((target, body))
            met = "" if goal is None else ("met" if rps / best_rps >= goal else "missed")
            p("| %s | %d | %s | %.1fk | %.2f | %s | %.1fk | **%.2f** | %.2f | %s | %s |" % (
                body, conns, best, best_rps / 1000, best_p99, target, rps / 1000, rps / best_rps, p99,
                "-" if goal is None else "≥ %.1f" % goal, met))
            if goal is not None:
                verdicts.append("- %s, %s, %d connections: %.2f× the best peer (%s), target ≥ %.1f×: **%s**; p99 %.2f ms vs %.2f ms: **%s**" % (
                    target, body, conns, rps / best_rps, best, goal, met, p99, best_p99, "met" if p99 <= best_p99 else "missed"))
    p("")
    idle = load(os.path.join(run, "idle.jsonl"))
    for row in idle:
        readings = [r for r in row["readings"] if r["connections"] != "closed"]
        if len(readings) >= 2 and row["target"].startswith("trove"):
            first, last = readings[0], readings[-1]
            per = (last["rss_mib"] - first["rss_mib"]) * 1024 / max(1, last["connections"] - first["connections"])
            verdicts.append("- %s: %.1f KiB of resident memory per idle keep-alive connection, target ≤ %.0f KiB: **%s**" % (
                row["target"], per, IDLE_TARGET_KIB, "met" if per <= IDLE_TARGET_KIB else "missed"))
    for row in (r for r in records if r.get("kind") == "miss"):
        if row["target"].startswith("trove") and row.get("over_origin_us") is not None:
            verdicts.append("- %s: a miss costs %.0f µs more than the origin's own answer (p50), target ≤ %d µs: **%s**" % (
                row["target"], row["over_origin_us"], MISS_TARGET_US, "met" if row["over_origin_us"] <= MISS_TARGET_US else "missed"))
        elif row["target"] == "nginx" and row.get("over_origin_us") is not None:
            verdicts.append("- (nginx proxy_cache adds %.0f µs to a miss in the same run)" % row["over_origin_us"])
    if verdicts:
        p("### Issue #17's targets")
        p("")
        out.extend(verdicts)
        p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
