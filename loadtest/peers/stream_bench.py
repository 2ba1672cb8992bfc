#!/usr/bin/env python3
"""Large answers through a proxy that does not store them (stdlib only): what a slow client costs, time to first
byte, and throughput. Used by loadtest/stream.sh; every run is bounded in count and time.

  stream_bench.py slow URL --clients 50 --rate 1048576 --seconds 20 --pids PID[,PID...]
      N clients download URL at RATE bytes/s each (a small receive buffer, reads paced), for SECONDS; prints the
      peak resident memory of PIDS (summed, with their children) above what it was before, and bytes received.
  stream_bench.py ttfb URL --count 3
      COUNT downloads at once; prints the median time from sending the request to the first body byte.
  stream_bench.py throughput URL --count 3
      COUNT downloads one after another, read as fast as possible; prints the median MB/s.
Output: one JSON object on stdout.
"""
import argparse
import asyncio
import json
import os
import socket
import statistics
import time
from urllib.parse import urlsplit


def rss_bytes(pids):
    """Resident memory of the pids and their children (nginx's workers), in bytes."""
    seen, total = set(), 0
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open("/proc/%d/status" % pid) as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            with open("/proc/%d/task/%d/children" % (pid, pid)) as children:
                todo += [int(child) for child in children.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return total


async def connect(url, receive_buffer=None):
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
    target = parts.path + ("?" + parts.query if parts.query else "")
    writer.write(("GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" % target).encode())
    await writer.drain()
    return reader, writer


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head


async def download(url, rate=None, deadline=None, receive_buffer=None, on_first_byte=None):
    """Bytes of body read; paced to `rate` bytes/s when given; stops at `deadline` (monotonic)."""
    reader, writer = await connect(url, receive_buffer)
    received = 0
    try:
        status, _ = await read_head(reader)
        if status != 200:
            raise RuntimeError("status %d" % status)
        started = time.monotonic()
        while True:
            if deadline and time.monotonic() >= deadline:
                break
            chunk = await reader.read(16384 if rate else 1 << 20)
            if not chunk:
                break
            if received == 0 and on_first_byte:
                on_first_byte()
            received += len(chunk)
            if rate:
                ahead = received / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    finally:
        writer.close()
    return received


async def slow(args):
    pids = [int(pid) for pid in args.pids.split(",") if pid]
    before = rss_bytes(pids)
    deadline = time.monotonic() + args.seconds
    peak = before
    tasks = [asyncio.create_task(download(args.url, rate=args.rate, deadline=deadline, receive_buffer=65536))
             for _ in range(args.clients)]
    while not all(task.done() for task in tasks) and time.monotonic() < deadline + 5:
        peak = max(peak, rss_bytes(pids))
        await asyncio.sleep(0.25)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [str(result) for result in results if isinstance(result, BaseException)]
    received = sum(result for result in results if isinstance(result, int))
    return {"mode": "slow", "clients": args.clients, "rate": args.rate, "seconds": args.seconds,
            "rss_before": before, "rss_peak": peak, "rss_growth": peak - before, "received": received,
            "errors": errors[:3], "error_count": len(errors)}


async def ttfb(args):
    async def one():
        sent = time.monotonic()
        first = []
        await download(args.url, on_first_byte=lambda: first.append(time.monotonic()))
        return (first[0] - sent) * 1000 if first else None
    values = [value for value in await asyncio.gather(*[one() for _ in range(args.count)]) if value is not None]
    return {"mode": "ttfb", "count": args.count, "ms": values, "median_ms": statistics.median(values) if values else None}


async def throughput(args):
    rates = []
    for _ in range(args.count):
        started = time.monotonic()
        received = await download(args.url)
        rates.append(received / (time.monotonic() - started) / 1e6)
    return {"mode": "throughput", "count": args.count, "mb_per_s": rates, "median_mb_per_s": statistics.median(rates)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["slow", "ttfb", "throughput"])
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=int, default=1 << 20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--pids", default="")
    parser.add_argument("--count", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run({"slow": slow, "ttfb": ttfb, "throughput": throughput}[args.mode](args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
