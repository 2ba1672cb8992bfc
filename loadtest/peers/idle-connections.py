#!/usr/bin/env python3
"""Resident memory of caching proxies as idle keep-alive connections pile up.

For each target (name=host:port), opens connections in steps up to --max, sends one cached GET on each
(so each connection has served a request and is now idle, kept alive), and reads the resident size (VmRSS,
summed over the target's processes: found with `ss -ltnp` on its port, plus their children) after each step,
then again after closing them all. Prints a Markdown table; --out appends one JSON line per target.

  idle-connections.py --url-path /api/events?page=1 --max 10000 trove=127.0.0.1:18090 nginx=127.0.0.1:18081
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time


def pids_on_port(port):
    out = subprocess.run(["ss", "-H", "-ltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    pids = {int(part.split("=")[1].rstrip(",)")) for part in out.replace(",", " ").split() if part.startswith("pid=")}
    # Children too (nginx workers, varnish's cache process), whichever process holds the listener.
    found = set(pids)
    for pid in list(pids):
        try:
            children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
            found.update(int(c) for c in children)
        except OSError:
            pass
    return sorted(found)


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def one_request(sock, host, path):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before answering")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return head.split(b"\r\n")[0].decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="+", help="name=host:port")
    parser.add_argument("--url-path", default="/api/events?page=1")
    parser.add_argument("--max", type=int, default=10000)
    parser.add_argument("--steps", default="0,1000,2500,5000,10000")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait before each reading")
    parser.add_argument("--out", help="append JSON lines here")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.max + 100
    if soft < want:
        if hard < want:
            sys.exit(f"idle-connections: needs {want} open files, the limit is {hard}; raise it (ulimit -n) and run again")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    steps = [s for s in (int(x) for x in args.steps.split(",")) if s <= args.max]
    rows = []
    for target in args.targets:
        name, _, address = target.partition("=")
        host, _, port = address.rpartition(":")
        pids = pids_on_port(int(port))
        if not pids:
            sys.exit(f"idle-connections: nothing listens on {address} ({name})")
        print(f"[{time.strftime('%H:%M:%S')}] {name}: pids {pids}", file=sys.stderr)
        sockets = []
        readings = []
        failed = 0
        for step in steps:
            while len(sockets) < step:
                sock = socket.create_connection((host, int(port)), timeout=10)
                try:
                    one_request(sock, address, args.url_path)
                    sockets.append(sock)
                except (OSError, ConnectionError):
                    failed += 1
                    sock.close()
                    if failed > 100:
                        sys.exit(f"idle-connections: {name} refused more than 100 connections at {len(sockets)}")
                if len(sockets) % 1000 == 0:
                    print(f"\r  {name}: {len(sockets)} idle connections", end="", file=sys.stderr, flush=True)
            time.sleep(args.settle)
            still_open = len(sockets)
            readings.append({"connections": still_open, "rss_mib": round(rss_kib(pids_on_port(int(port))) / 1024, 1)})
        for sock in sockets:
            sock.close()
        time.sleep(args.settle * 2)
        readings.append({"connections": "closed", "rss_mib": round(rss_kib(pids_on_port(int(port))) / 1024, 1)})
        print(file=sys.stderr)
        row = {"target": name, "readings": readings, "failed_connections": failed}
        rows.append(row)
        if args.out:
            with open(args.out, "a") as out:
                out.write(json.dumps(row) + "\n")
    header = [str(r["connections"]) for r in rows[0]["readings"]]
    print("| target | " + " | ".join(f"{h} conns" if h != "closed" else "after closing" for h in header) + " | per idle connection |")
    print("|---|" + "---:|" * (len(header) + 1))
    for row in rows:
        values = [r["rss_mib"] for r in row["readings"]]
        connections = [r["connections"] for r in row["readings"] if r["connections"] != "closed"]
        per = (values[len(connections) - 1] - values[0]) * 1024 / max(1, connections[-1] - connections[0])
        print(f"| {row['target']} | " + " | ".join(f"{v} MiB" for v in values) + f" | {per:.1f} KiB |")


if __name__ == "__main__":
    main()
