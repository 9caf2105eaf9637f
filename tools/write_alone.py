#!/usr/bin/env python3
"""Writes a batch's payloads the plain way, as a script would, and prints how long it took.

Used by `make bench-memory` (benches/memory.rs) as a second reference beside its own Rust
loop: the issue that set analyze's time target compared it with "a Python script doing the
same job". One file per record body, in nine folders (`replay/C0` .. `replay/C8` below
OUT), each written to a temporary name, fsynced, closed and renamed; the folders are made
first. Only the writes are timed (not Python's start-up, nor reading the batch).

    python3 tools/write_alone.py BATCH.json OUT

Prints one line of JSON: {"seconds": wall time of the writes, "cpu": user + system}.
"""
import json
import os
import sys
import time


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: write_alone.py BATCH.json OUT")
    batch, out = sys.argv[1], sys.argv[2]
    with open(batch, "rb") as f:
        records = json.load(f)["Records"]
    payloads = [(r["messageId"], r["body"].encode()) for r in records]
    started, cpu = time.perf_counter(), time.process_time()
    folders = [os.path.join(out, "replay", f"C{i}") for i in range(9)]
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
    for i, (message_id, body) in enumerate(payloads):
        folder = folders[i % len(folders)]
        tmp = os.path.join(folder, f".{message_id}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(folder, f"{message_id}.json"))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu}))


if __name__ == "__main__":
    main()
