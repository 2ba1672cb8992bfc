#!/usr/bin/env python3
"""What one hostile client costs a running Trove (issue #12), measured while a normal load runs.

Phases, each against a Trove whose process id is given (for its resident memory):
  idle       N idle TCP connections opened (split over worker processes: one process may not hold them all),
             while `wrk` sends cached GETs on connections it opened first; the admin API is asked /healthz
             every 200 ms. Reports how many flood connections were held, refused at once, closed later.
  slowloris  M connections sending a request head one byte a second, during the same kind of load; reports
             how many got 408 and when.
  pipeline   C clients each pipelining R GETs of a large cached answer and reading nothing (small receive
             buffers); Trove's resident memory sampled every 0.5 s, until the send timeout cuts them off.
Prints a Markdown report and appends JSON lines to --out. Bounded in count and time; loopback only.

  attack.py --proxy 127.0.0.1:18094 --admin 127.0.0.1:18095 --pid 1234 --phases idle,slowloris,pipeline
"""
import argparse
import json
import multiprocessing
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def limits_reached(admin):
    """Trove's own count of each limit reached (`trove_limits_reached_total`), from the admin API; {} if unreadable,
    None when the build has no such metric."""
    host, _, port = admin.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(f"GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return {}
    text = data.decode(errors="replace")
    if "trove_limits_reached_total" not in text:
        return None  # a build from before the limits
    pattern = r'trove_limits_reached_total\{limit="([a-z_]+)"\} ([0-9.e+]+)'
    return {m.group(1): int(float(m.group(2))) for m in re.finditer(pattern, text)}


def reached_during(admin, before):
    after = limits_reached(admin)
    if after is None or before is None:
        return None
    return {name: count - before.get(name, 0) for name, count in after.items() if count - before.get(name, 0) > 0}


def wrk(url, seconds, connections=50):
    """Runs wrk; returns requests/s, requests, non-2xx/3xx answers, socket errors, p99 (ms)."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors = 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors = sum(int(x) for x in m.groups())
    p99 = None
    if m := re.search(r"99%\s+([\d.]+)(us|ms|s)", out):
        p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    return {"rps": round(rps), "requests": requests, "non_2xx": non2xx, "socket_errors": errors, "p99_ms": p99}


class AdminProbe(threading.Thread):
    """Asks the admin API /healthz every 200 ms on a new connection; counts answers and failures."""

    def __init__(self, address):
        super().__init__(daemon=True)
        self.host, _, port = address.rpartition(":")
        self.port = int(port)
        self.ok = 0
        self.failed = 0
        self.slowest_ms = 0.0
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            started = time.monotonic()
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as sock:
                    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {self.host}\r\nConnection: close\r\n\r\n".encode())
                    data = b""
                    while chunk := sock.recv(4096):
                        data += chunk
                if data.startswith(b"HTTP/1.1 200"):
                    self.ok += 1
                else:
                    self.failed += 1
            except OSError:
                self.failed += 1
            self.slowest_ms = max(self.slowest_ms, (time.monotonic() - started) * 1000)
            self.stopped.wait(0.2)

    def result(self):
        return {"admin_ok": self.ok, "admin_failed": self.failed, "admin_slowest_ms": round(self.slowest_ms, 1)}


def idle_worker(host, port, count, hold_s, queue):
    """Opens `count` connections, sends nothing, and reports how many were closed by the server, and when."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    selector = selectors.DefaultSelector()
    opened, failed = 0, 0
    started = time.monotonic()
    closed_at = []   # (seconds after its own connect, seconds after the flood began)

    def reap(timeout):
        for key, _ in selector.select(timeout=timeout):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:
                now = time.monotonic()
                closed_at.append((now - key.data, now - started))
                selector.unregister(key.fileobj)
                key.fileobj.close()

    for index in range(count):
        try:
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((host, port))
            selector.register(sock, selectors.EVENT_READ, time.monotonic())
            opened += 1
        except OSError:
            failed += 1
            sock.close()
        if index % 100 == 99:
            reap(0)  # closes that come at once are seen at once
    deadline = started + hold_s
    while time.monotonic() < deadline and len(closed_at) < opened:
        reap(0.2)
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    queue.put({"opened": opened, "failed": failed, "closed_at": closed_at})


def phase_idle(args, url):
    host, _, port = args.proxy.rpartition(":")
    workers = max(1, (args.idle + 9_000) // 9_500)
    per = args.idle // workers
    log(f"idle: baseline wrk {args.seconds}s")
    baseline = wrk(url, args.seconds)
    log(f"idle: {args.idle} idle connections in {workers} processes while wrk runs {args.seconds}s")
    limits_before = limits_reached(args.admin)
    probe = AdminProbe(args.admin)
    probe.start()
    queue = multiprocessing.Queue()
    load = {}
    loader = threading.Thread(target=lambda: load.update(wrk(url, args.seconds)))
    loader.start()
    time.sleep(1)  # wrk's connections are open before the flood, as a running service's clients would be
    rss_before = rss_mib(args.pid)
    processes = [multiprocessing.Process(target=idle_worker, args=(host, int(port), per, args.seconds + args.hold, queue))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    peak_rss, peak_fds = 0.0, 0
    while loader.is_alive():
        peak_rss = max(peak_rss, rss_mib(args.pid) or 0)
        peak_fds = max(peak_fds, fds(args.pid) or 0)
        time.sleep(0.25)
    loader.join()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    probe.stopped.set()
    probe.join()
    closed = [pair for r in results for pair in r["closed_at"]]
    opened = sum(r["opened"] for r in results)
    reached = reached_during(args.admin, limits_before)
    return {
        "phase": "idle", "connections": args.idle, "baseline": baseline, "under_attack": load,
        "flood_opened": opened, "flood_failed": sum(r["failed"] for r in results),
        "flood_still_open": opened - len(closed), "last_close_s": round(max(t for _, t in closed), 1) if closed else None,
        "limits_reached": reached,
        "rss_before_mib": rss_before, "rss_peak_mib": round(peak_rss, 1), "fds_peak": peak_fds, **probe.result(),
    }


def phase_slowloris(args, url):
    host, _, port = args.proxy.rpartition(":")
    log(f"slowloris: {args.slowloris} connections at 1 byte/s while wrk runs {args.seconds}s")
    limits_before = limits_reached(args.admin)
    sockets = []
    for _ in range(args.slowloris):
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(b"GET /api/events?page=1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sockets.append(sock)
    started = time.monotonic()
    answers = {}
    load = {}
    loader = threading.Thread(target=lambda: load.update(wrk(url, args.seconds)))
    loader.start()
    probe = AdminProbe(args.admin)
    probe.start()
    open_sockets = list(sockets)
    while open_sockets and time.monotonic() - started < args.seconds + args.hold:
        for sock in list(open_sockets):
            try:
                sock.sendall(b"a")
            except OSError:
                pass
            sock.setblocking(False)
            try:
                data = sock.recv(4096)
                if data or data == b"":
                    answers[sock.fileno()] = (time.monotonic() - started, data[:12].decode(errors="replace"))
                    open_sockets.remove(sock)
            except BlockingIOError:
                pass
            except OSError:
                answers[sock.fileno()] = (time.monotonic() - started, "reset")
                open_sockets.remove(sock)
            sock.setblocking(True)
        time.sleep(1)
    loader.join()
    probe.stopped.set()
    probe.join()
    for sock in sockets:
        sock.close()
    times = sorted(t for t, _ in answers.values())
    return {
        "phase": "slowloris", "connections": args.slowloris, "under_attack": load,
        "answered_408": sum(1 for _, text in answers.values() if text.startswith("HTTP/1.1 408")),
        "closed_otherwise": sum(1 for _, text in answers.values() if not text.startswith("HTTP/1.1 408")),
        "still_open": len(open_sockets), "first_close_s": round(times[0], 1) if times else None,
        "last_close_s": round(times[-1], 1) if times else None, "limits_reached": reached_during(args.admin, limits_before),
        **probe.result(),
    }


def phase_pipeline(args):
    host, _, port = args.proxy.rpartition(":")
    path = f"/api/big?kb={args.big_kb}"
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://{args.proxy}{path}"], check=True)
    log(f"pipeline: {args.clients} clients x {args.requests} pipelined GETs of {args.big_kb} KiB, reading nothing")
    rss_before = rss_mib(args.pid)
    limits_before = limits_reached(args.admin)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() * args.requests
    clients = []
    for _ in range(args.clients):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        sock.setblocking(False)
        try:
            sock.send(request)
        except BlockingIOError:
            pass
        clients.append(sock)
    samples = []
    started = time.monotonic()
    aborted = None
    while time.monotonic() - started < args.pipeline_seconds:
        samples.append((round(time.monotonic() - started, 1), rss_mib(args.pid)))
        # Bounded: a build without back-pressure could take the machine's memory.
        if (samples[-1][1] or 0) > args.max_rss_mib:
            aborted = samples[-1][0]
            log(f"pipeline: Trove passed {args.max_rss_mib} MiB after {aborted} s; the clients give up")
            break
        time.sleep(0.5)
    reached = reached_during(args.admin, limits_before)
    for sock in clients:
        sock.close()
    time.sleep(2)
    peak = max(s[1] or 0 for s in samples)
    return {
        "phase": "pipeline", "clients": args.clients, "requests_each": args.requests, "answer_kib": args.big_kb,
        "rss_before_mib": round(rss_before, 1), "rss_peak_mib": round(peak, 1),
        "rss_end_of_attack_mib": round(samples[-1][1] or 0, 1), "rss_after_close_mib": round(rss_mib(args.pid) or 0, 1),
        "aborted_at_s": aborted, "limits_reached": reached, "samples": samples,
    }


def fmt(reached):
    if reached is None:
        return "not counted (this build has no such metric)"
    return ", ".join(f"{name} {count:,}" for name, count in sorted(reached.items())) or "none"


def report(rows):
    lines = []
    for row in rows:
        if row["phase"] == "idle":
            b, a = row["baseline"], row["under_attack"]
            lines += [
                f"### {row['connections']:,} idle connections during a `wrk -t1 -c50` load", "",
                "| | requests/s | p99 | non-2xx | socket errors |", "|---|---:|---:|---:|---:|",
                f"| before the attack | {b['rps']:,} | {b['p99_ms']} ms | {b['non_2xx']} | {b['socket_errors']} |",
                f"| during the attack | {a['rps']:,} | {a['p99_ms']} ms | {a['non_2xx']} | {a['socket_errors']} |", "",
                f"Flood: {row['flood_opened']:,} connections opened, {row['flood_opened'] - row['flood_still_open']:,} of them closed "
                f"by Trove (the last {row['last_close_s']} s after the flood began), {row['flood_still_open']:,} still open at the "
                f"end (Trove's own counts below say which limit closed them). Trove's descriptors peaked at "
                f"{row['fds_peak']:,}; resident memory {row['rss_before_mib']:.0f} → {row['rss_peak_mib']:.0f} MiB. Admin API "
                f"`/healthz` during the attack: {row['admin_ok']} answered, {row['admin_failed']} failed, slowest "
                f"{row['admin_slowest_ms']} ms. Trove's own count of limits reached: {fmt(row.get('limits_reached'))}.", ""]
        elif row["phase"] == "slowloris":
            a = row["under_attack"]
            lines += [
                f"### {row['connections']} slowloris connections (1 byte/s) during a `wrk -t1 -c50` load", "",
                "| requests/s | p99 | non-2xx | socket errors | answered 408 | closed otherwise | still open | closed after |",
                "|---:|---:|---:|---:|---:|---:|---:|---|",
                f"| {a['rps']:,} | {a['p99_ms']} ms | {a['non_2xx']} | {a['socket_errors']} | {row['answered_408']} | "
                f"{row['closed_otherwise']} | {row['still_open']} | {row['first_close_s']}–{row['last_close_s']} s |", "",
                f"Admin API `/healthz` meanwhile: {row['admin_ok']} answered, {row['admin_failed']} failed, slowest "
                f"{row['admin_slowest_ms']} ms. Trove's own count of limits reached: {fmt(row.get('limits_reached'))}.", ""]
        elif row["phase"] == "pipeline":
            lines += [
                f"### {row['clients']} clients pipelining {row['requests_each']} GETs of a {row['answer_kib']} KiB answer, "
                "reading nothing", "",
                "| resident memory before | peak | at the end of the attack | after the clients closed |",
                "|---:|---:|---:|---:|",
                f"| {row['rss_before_mib']} MiB | {row['rss_peak_mib']} MiB | {row['rss_end_of_attack_mib']} MiB | "
                f"{row['rss_after_close_mib']} MiB |", "",
                "Samples (s, MiB): " + ", ".join(f"{t}: {m:.0f}" for t, m in row["samples"][::4] if m is not None)
                + (f". Stopped at {row['aborted_at_s']} s: past the run's memory bound." if row.get("aborted_at_s") else "")
                + f". Trove's own count of limits reached: {fmt(row.get('limits_reached'))}.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--admin", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--phases", default="idle,slowloris,pipeline")
    parser.add_argument("--path", default="/api/events?page=1")
    parser.add_argument("--seconds", type=int, default=15, help="wrk's duration in each phase")
    parser.add_argument("--hold", type=int, default=5, help="seconds the attack lasts past the load")
    parser.add_argument("--idle", type=int, default=20_000)
    parser.add_argument("--slowloris", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--big-kb", type=int, default=40960)
    parser.add_argument("--pipeline-seconds", type=int, default=25)
    parser.add_argument("--max-rss-mib", type=int, default=6144, help="the pipeline phase stops when Trove passes this")
    parser.add_argument("--out")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = f"http://{args.proxy}{args.path}"
    subprocess.run(["curl", "-s", "-o", "/dev/null", url], check=True)
    rows = []
    for phase in args.phases.split(","):
        if phase == "idle":
            rows.append(phase_idle(args, url))
        elif phase == "slowloris":
            rows.append(phase_slowloris(args, url))
        elif phase == "pipeline":
            rows.append(phase_pipeline(args))
        else:
            sys.exit(f"attack.py: no phase '{phase}' (idle, slowloris, pipeline)")
        if args.out:
            with open(args.out, "a") as out:
                out.write(json.dumps(rows[-1]) + "\n")
        alive = rss_mib(args.pid) is not None
        log(f"{phase}: done; Trove {'is still running' if alive else 'IS GONE'}")
    print(report(rows))


if __name__ == "__main__":
    main()
