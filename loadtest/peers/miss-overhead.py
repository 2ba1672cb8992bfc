#!/usr/bin/env python3
"""What each proxy adds to a cache miss: the latency of a miss through it, minus the origin's own.

For each target (name=host:port; `origin` is the origin itself, asked directly), sends --n GETs in a row on one
keep-alive connection, each for a key never asked for before (`/api/events?page=<new>&delay_ms=0`: origin.py
answers at once, so the origin's own time is as small and as steady as it gets), in --rounds rounds with the
order of the targets rotated every round (the machine's drift hits every target alike). Checks that the origin
served every request (each one was a miss: stored, not a hit), then prints a Markdown table: p50, p90 and p99 per
target, and the p50 overhead over the origin's. --out appends one JSON line per target (kind "miss").

  miss-overhead.py --origin-url http://127.0.0.1:18080 origin=127.0.0.1:18080 nginx=127.0.0.1:18081 trove=127.0.0.1:18090
"""
import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.request


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def origin_total(origin_url):
    with urllib.request.urlopen(origin_url + "/__stats", timeout=10) as answer:
        return json.load(answer)["total"]


def run(host, port, paths, timeout):
    """Latencies (µs) of GETs of `paths` on one connection, and the X-Cache values seen."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    latencies, caches = [], {}
    for path in paths:
        started = time.perf_counter_ns()
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        latencies.append((time.perf_counter_ns() - started) / 1000)
        if answer.status != 200:
            raise SystemExit("miss-overhead: %s:%d answered %d to %s" % (host, port, answer.status, path))
        cache = answer.getheader("X-Cache") or "-"
        caches[cache] = caches.get(cache, 0) + 1
    connection.close()
    return latencies, caches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="misses per target per round (default 500)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--origin-url", default="http://127.0.0.1:18080")
    parser.add_argument("--out", help="append one JSON line per target here")
    parser.add_argument("targets", nargs="+", help="name=host:port")
    args = parser.parse_args()
    if not 1 <= args.n <= 100_000 or not 1 <= args.rounds <= 20:
        raise SystemExit("miss-overhead: --n must be 1..100000 and --rounds 1..20")
    targets = []
    for spec in args.targets:
        name, _, address = spec.partition("=")
        host, _, port = address.rpartition(":")
        targets.append((name, host, int(port)))
    latencies = {name: [] for name, _, _ in targets}
    caches = {name: {} for name, _, _ in targets}
    sequence = int(time.time()) % 100_000 * 1_000_000
    for round_index in range(args.rounds):
        order = targets[round_index % len(targets):] + targets[:round_index % len(targets)]
        for name, host, port in order:
            paths = ["/api/events?page=%d&delay_ms=0" % (sequence + i) for i in range(args.n)]
            sequence += args.n
            before = origin_total(args.origin_url)
            measured, seen = run(host, port, paths, timeout=10)
            served = origin_total(args.origin_url) - before
            if served != args.n:
                raise SystemExit("miss-overhead: the origin served %d of %s's %d misses: not every request was a miss"
                                 % (served, name, args.n))
            latencies[name] += measured
            for cache, count in seen.items():
                caches[name][cache] = caches[name].get(cache, 0) + count
            print("  %s: round %d of %d, %d misses, p50 %.0f µs" % (
                name, round_index + 1, args.rounds, args.n, statistics.median(measured)), file=sys.stderr, flush=True)
    base = statistics.median(latencies["origin"]) if "origin" in latencies else None
    print("| target | misses | p50 µs | p90 µs | p99 µs | p50 over the origin's | X-Cache |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, _, _ in targets:
        values = latencies[name]
        p50 = statistics.median(values)
        over = "-" if base is None or name == "origin" else "%+.0f µs" % (p50 - base)
        print("| %s | %d | %.0f | %.0f | %.0f | %s | %s |" % (
            name, len(values), p50, percentile(values, 0.9), percentile(values, 0.99), over,
            " ".join("%s×%d" % item for item in sorted(caches[name].items()))))
        if args.out:
            with open(args.out, "a") as out:
                out.write(json.dumps({"kind": "miss", "target": name, "n": len(values), "p50_us": p50,
                                      "p90_us": percentile(values, 0.9), "p99_us": percentile(values, 0.99),
                                      "over_origin_us": None if base is None or name == "origin" else p50 - base,
                                      "x_cache": caches[name]}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
