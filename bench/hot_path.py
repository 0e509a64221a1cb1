"""
The redeem hot path, in process against the live emulator: database queries per redeem, upstream HTTP calls per
redeem with a warm cache (the floor is two: subsidy can_redeem and the transaction create), and latency per redeem.

    .venv/bin/python bench/hot_path.py [--redeems 40] [--latency-ms 0] [--database-url mysql://...]

Two kinds of redeem are measured, each on a fresh (learner, content) pair so every one really redeems:
  warm_learner  the learner was seen moments ago (one earlier redemption of other content): every cacheable read
                is warm, so this is the steady-state floor;
  new_learner   the first request ever for this learner: the per-learner LMS lookup is a cache miss.
Prints a table and, on its last line, the figures as one JSON object.
"""
import argparse
import collections
import json
import logging
import statistics
import time

from _harness import percentile, start


def main():
    logging.getLogger("edx_rest_framework_extensions").setLevel(logging.WARNING)  # one INFO line per new user
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--redeems", type=int, default=40, help="redemptions per kind")
    parser.add_argument("--latency-ms", type=int, default=0, help="emulator base latency during the measurement")
    parser.add_argument("--database-url", help="run on this database instead of a throwaway SQLite file")
    parser.add_argument("--redis-url", help="use this Redis for the cache and lock")
    args = parser.parse_args()

    emulator, emulator_cm, world = start(learners=2 * args.redeems + 10, database_url=args.database_url,
                                         redis_url=args.redis_url)
    try:
        return measure(args, emulator, world)
    finally:
        emulator_cm.__exit__(None, None, None)


def measure(args, emulator, world):
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from enterprise_access.devtools.tokens import mint_jwt

    client = Client()
    customer = world["enterprise_customer_uuid"]
    policy = world["policies"]["per_learner_enrollment"]
    url = f"/api/v1/policy-redemption/{policy}/redeem/"
    content, other_content = world["content"]["ordinary"][0], world["content"]["ordinary"][2]
    extra = [lr["lms_user_id"] for lr in world["learners"] if lr["lms_user_id"] >= 10_001]
    warm_learners, new_learners = extra[:args.redeems], extra[args.redeems:2 * args.redeems]
    tokens = {uid: mint_jwt(lms_user_id=uid, roles=[f"enterprise_learner:{customer}"]) for uid in extra}

    def post(uid, key):
        return client.post(url, {"lms_user_id": uid, "content_key": key}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"JWT {tokens[uid]}")

    def measured(uid, key):
        emulator.control.clear_requests()
        with CaptureQueriesContext(connections["default"]) as default_q, \
                CaptureQueriesContext(connections["independent"]) as independent_q:
            started = time.perf_counter()
            response = post(uid, key)
            elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (response.status_code, response.content[:500])
        calls = [f"{r['service']} {r['method']} {r['path']}"
                 + (f" ?{','.join(sorted(r['query']))}" if r.get("query") else "")
                 for r in emulator.control.requests()]
        queries = [q["sql"] for q in default_q.captured_queries + independent_q.captured_queries]
        return elapsed, queries, calls

    # Warm the service token and the cached catalog/content reads, then every "warm" learner's own lookup.
    for uid in warm_learners:
        assert post(uid, other_content).status_code == 200
    emulator.control.set_latency(args.latency_ms)

    figures = {}
    for kind, learners in (("warm_learner", warm_learners), ("new_learner", new_learners)):
        runs = [measured(uid, content) for uid in learners]
        ms = [r[0] for r in runs]
        query_counts = [len(r[1]) for r in runs]
        call_counts = [len(r[2]) for r in runs]
        typical = collections.Counter(tuple(r[2]) for r in runs).most_common(1)[0][0]
        figures[kind] = {
            "redeems": len(runs),
            "queries_median": statistics.median(query_counts), "queries_min": min(query_counts),
            "queries_max": max(query_counts),
            "upstream_calls_median": statistics.median(call_counts), "upstream_calls_min": min(call_counts),
            "upstream_calls_max": max(call_counts),
            "p50_ms": round(percentile(ms, 0.5), 1), "p95_ms": round(percentile(ms, 0.95), 1),
            "mean_ms": round(statistics.mean(ms), 1),
            "calls": list(typical),
            "query_kinds": dict(collections.Counter(_query_kind(q) for q in runs[len(runs) // 2][1])),
        }

    print(f"\nRedeem hot path, in process (test settings, {'MariaDB' if args.database_url else 'SQLite'}, "
          f"emulator latency {args.latency_ms} ms), {args.redeems} redeems per kind")
    header = ("kind", "queries", "upstream calls", "p50 ms", "p95 ms", "mean ms")
    print(f"{header[0]:>14}  {header[1]:>9}  {header[2]:>14}  {header[3]:>8}  {header[4]:>8}  {header[5]:>8}")
    for kind, f in figures.items():
        print(f"{kind:>14}  {f['queries_median']:>9}  {f['upstream_calls_median']:>14}  {f['p50_ms']:>8}  "
              f"{f['p95_ms']:>8}  {f['mean_ms']:>8}")
    for kind, f in figures.items():
        print(f"{kind} upstream calls ({len(f['calls'])}; floor 2 = subsidy can_redeem + transaction create):")
        for call in f["calls"]:
            print(f"    {call}")
        print(f"{kind} queries by kind: {json.dumps(f['query_kinds'])}")
    print(json.dumps({"benchmark": "hot_path", "latency_ms": args.latency_ms,
                      "database": "mysql" if args.database_url else "sqlite", "figures": figures}, sort_keys=True))
    return 0


def _query_kind(sql):
    """``VERB table`` of one SQL statement (the statement's own table, not a subquery's)."""
    words = sql.replace("`", " ").replace('"', " ").split()
    upper = [w.upper() for w in words]
    verb = upper[0] if upper else "?"
    marker = {"INSERT": "INTO", "UPDATE": "UPDATE", "SELECT": "FROM", "DELETE": "FROM"}.get(verb)
    if marker in upper and upper.index(marker) + 1 < len(words):
        return f"{verb} {words[upper.index(marker) + 1]}"
    return verb


if __name__ == "__main__":
    raise SystemExit(main())
