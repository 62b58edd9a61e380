"""Closed-loop load for the chord peer, measured like dsar-real-path-bench.

usage: load.py MODE REQUESTS IN_FLIGHT WARMUP

Keeps IN_FLIGHT chords in flight; a request is done when the load generator
pops its id from the done list finalize appends to. Latency: submit ->
id popped. req/s: REQUESTS / (first submit -> last id popped). The warm-up
requests run first and are not counted. Prints one line:
  celery-chord mode=MODE in_flight=.. n=.. req/s=.. p50_ms=.. p99_ms=..
"""
import sys
import time

from celery import chord, group

from chord_app import DONE_LIST, STORES, connection, finalize, store_task


def quantile(sorted_values, q):
    rank = max(1, min(len(sorted_values), int(q * len(sorted_values) + 0.999999)))
    return sorted_values[rank - 1]


def phase(tag, count, in_flight):
    redis = connection()
    redis.delete(DONE_LIST)
    submitted = {}
    latencies = []
    sent = 0
    first = last = None
    while len(latencies) < count:
        while sent < count and sent - len(latencies) < in_flight:
            request_id = f"{tag}-{sent}"
            submitted[request_id] = time.monotonic()
            if first is None:
                first = submitted[request_id]
            chord(group(store_task.s(request_id, s) for s in STORES))(
                finalize.s(request_id))
            sent += 1
        popped = redis.blpop(DONE_LIST, timeout=60)
        if popped is None:
            sys.exit(f"celery-chord: no request finished in 60 s "
                     f"({len(latencies)} of {count} done)")
        now = time.monotonic()
        request_id = popped[1].decode()
        if request_id not in submitted:
            sys.exit(f"celery-chord: unknown request {request_id} finished")
        latencies.append(now - submitted.pop(request_id))
        last = now
    statuses = redis.pipeline(transaction=False)
    for i in range(count):
        statuses.hget(f"peer:request:{tag}-{i}", "status")
    bad = [s for s in statuses.execute() if s != b"completed"]
    if bad:
        sys.exit(f"celery-chord: {len(bad)} requests did not complete")
    return count / (last - first), sorted(latencies)


def main():
    mode, requests, in_flight, warmup = (sys.argv[1], int(sys.argv[2]),
                                         int(sys.argv[3]), int(sys.argv[4]))
    tag = f"{int(time.time() * 1000)}"
    if warmup > 0:
        phase(f"warm-{tag}", warmup, in_flight)
    rate, latencies = phase(f"run-{tag}", requests, in_flight)
    print(f"celery-chord mode={mode} in_flight={in_flight} n={requests} "
          f"req/s={rate:.1f} p50_ms={quantile(latencies, .50) * 1e3:.2f} "
          f"p99_ms={quantile(latencies, .99) * 1e3:.2f}", flush=True)


if __name__ == "__main__":
    main()
