#!/usr/bin/env python3
"""iorun.py LABEL DEV CMD... — runs CMD (stdout passed through) and prints on stderr one
line: LABEL, wall seconds, the child's user and system CPU, the bytes the kernel
accounted to it (/proc/self/io of this wrapper after the child is reaped: read_bytes
and write_bytes, pages it made dirty, counted whole folios), and the bytes the block
device DEV saw written and read meanwhile (/proc/diskstats, 512-byte sectors: the whole
machine's traffic, so approximate when others use the disk). Exits with CMD's status."""
import os, resource, subprocess, sys, time


def io():
    d = {}
    for line in open("/proc/self/io"):
        k, v = line.split(":")
        d[k] = int(v)
    return d


def disk(dev):
    for line in open("/proc/diskstats"):
        f = line.split()
        if f[2] == dev:
            return int(f[5]) * 512, int(f[9]) * 512
    raise SystemExit(f"iorun: no device {dev} in /proc/diskstats")


label, dev, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
i0, (r0, w0), ru0 = io(), disk(dev), resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
rc = subprocess.call(cmd)
t1 = time.monotonic()
i1, (r1, w1), ru1 = io(), disk(dev), resource.getrusage(resource.RUSAGE_CHILDREN)
M = 1 << 20
print(f"{label}: wall {t1 - t0:.2f} s, user {ru1.ru_utime - ru0.ru_utime:.2f} s, "
      f"sys {ru1.ru_stime - ru0.ru_stime:.2f} s, peak RSS {ru1.ru_maxrss // 1024} MiB; "
      f"process io: write_bytes {(i1['write_bytes'] - i0['write_bytes']) / M:.0f} MiB, "
      f"read_bytes {(i1['read_bytes'] - i0['read_bytes']) / M:.0f} MiB; "
      f"disk {dev}: written {(w1 - w0) / M:.0f} MiB, read {(r1 - r0) / M:.0f} MiB",
      file=sys.stderr, flush=True)
sys.exit(rc)
