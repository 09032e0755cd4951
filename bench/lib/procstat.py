#!/usr/bin/env python3
"""CPU time of the FestAPI process and of PostgreSQL's processes, read from /proc.

    procstat.py measure PID DATABASE OUTPUT -- COMMAND [ARGS...]

runs COMMAND (its output passes through) and writes to OUTPUT the CPU time spent meanwhile:
{"server_ms": ..., "postgres_ms": ...}, where the server is process PID with its child
processes (PostGraphile's workers; FestAPI has none). For pgbench runs PID is `self`, this
script, and server_ms means nothing.

A snapshot holds utime + stime (fields 14 and 15 of /proc/<pid>/stat, in clock ticks) of the
server process, and of every process run by the OS user `postgres` that works for the benchmark:
the backends connected to DATABASE (their command line names it) and the server's own helpers
(postmaster, checkpointer, background and WAL writers, autovacuum), which write the WAL and pages
the backends produce. Backends of other databases are left out, so other work on a shared server
does not count.

Backends come and go (pgbench opens its connections when it starts and closes them when it
ends), so /proc is read every POLL_SECONDS while the command runs, and each process counts with
the last time read from it: a backend that starts during the window counts from zero, and one
that ends loses at most its last POLL_SECONDS.
"""

import json
import os
import pwd
import subprocess
import sys
import time

POLL_SECONDS = 0.05

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[1] == str(pid):
                    found.append(entry)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return found


def process_tree_ticks(pid):
    total = cpu_ticks(pid)
    for child in children(pid):
        try:
            total += cpu_ticks(child)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def command_line(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()


def postgres_processes(database):
    try:
        postgres_uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        return {}
    ticks = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != postgres_uid:
                continue
            line = command_line(entry)
            words = line.split()
            # A backend reads "postgres: 15/main: USER DATABASE HOST(PORT) STATE".
            is_backend = len(words) >= 5 and "(" in words[4] or (
                len(words) >= 5 and words[4] in ("[local]",)
            )
            if is_backend and words[3] != database:
                continue
            ticks[entry] = cpu_ticks(entry)
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return ticks


def snapshot(pid, database):
    return {"server": process_tree_ticks(pid), "postgres": postgres_processes(database)}


def delta(before, after):
    server = after["server"] - before["server"]
    postgres = sum(
        ticks - before["postgres"].get(process, 0) for process, ticks in after["postgres"].items()
    )
    to_ms = 1000 / TICKS_PER_SECOND
    return {"server_ms": server * to_ms, "postgres_ms": postgres * to_ms}


def measure(pid, database, output, command):
    before = snapshot(pid, database)
    latest = {"server": before["server"], "postgres": dict(before["postgres"])}
    child = subprocess.Popen(command)
    while child.poll() is None:
        time.sleep(POLL_SECONDS)
        now = snapshot(pid, database)
        latest["server"] = now["server"]
        latest["postgres"].update(now["postgres"])
    with open(output, "w") as result:
        json.dump(delta(before, latest), result)
    return child.returncode


def main():
    if len(sys.argv) < 6 or sys.argv[1] != "measure" or sys.argv[5] != "--":
        sys.exit("usage: procstat.py measure PID DATABASE OUTPUT -- COMMAND [ARGS...]")
    pid = sys.argv[2] if sys.argv[2] != "self" else str(os.getpid())
    sys.exit(measure(pid, sys.argv[3], sys.argv[4], sys.argv[6:]))


if __name__ == "__main__":
    main()
