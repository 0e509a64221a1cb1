"""
What the RedemptionAttempt record costs a redemption: the redeem endpoint against the live emulator, in one
run, with and without the record, alternating so that drift hits both alike.

    .venv/bin/python bench/attempt_overhead.py [--redeems 150] [--latencies 0 20] [--database-url mysql://root@127.0.0.1:3306/ea_bench]

Prints a table and, on its last line, the figures as one JSON object. Targets: at most 2 extra queries per
redeem and under 5% added median latency.
"""
import argparse
import json
import statistics
import time

from _harness import percentile, start


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--redeems", type=int, default=150, help="redemptions per mode and latency")
    parser.add_argument("--latencies", type=int, nargs="+", default=[0, 20],
                        help="emulator base latencies (ms) to measure at, in one run")
    parser.add_argument("--database-url", help="run on this database instead of a throwaway SQLite file")
    parser.add_argument("--redis-url", help="use this Redis for the cache and lock")
    args = parser.parse_args()

    emulator, emulator_cm, world = start(learners=2 * args.redeems * len(args.latencies) + 30, database_url=args.database_url,
                                         redis_url=args.redis_url)
    try:
        run(args, emulator, world)
    finally:
        emulator_cm.__exit__(None, None, None)


def run(args, emulator, world):
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from enterprise_access.devtools.tokens import mint_jwt
    from enterprise_access.apps.subsidy_access_policy import redemption

    class NoRecord:
        """Stands in for the recorder to measure the workflow without its audit row."""

        uuid = None
        row = None

        def __init__(self, request):
            self.fields = {}

        def note(self, **fields):
            self.fields.update(fields)

        def finish(self, result):
            pass

    real_recorder = redemption.AttemptRecorder
    client = Client()
    token = mint_jwt(lms_user_id=900, roles=["enterprise_openedx_operator:*"])
    policy = world["policies"]["per_learner_enrollment"]
    # Lift the demo policy's spend limit and deepen its subsidy: this measures the record's cost, not the limits.
    from enterprise_access.devtools import demo
    from enterprise_access.apps.subsidy_access_policy.models import SubsidyAccessPolicy

    SubsidyAccessPolicy.objects.filter(uuid=policy).update(spend_limit=None)
    subsidy = next(sub for sub in demo.emulator_seed_document()["subsidies"]
                   if sub["uuid"] == world["subsidies"]["per_learner_enrollment"])
    emulator.control.seed({"subsidies": [{**subsidy, "starting_balance": 1_000_000_000}]})
    url = f"/api/v1/policy-redemption/{policy}/redeem/"
    learners = [lr["lms_user_id"] for lr in world["learners"]]
    content = world["content"]["ordinary"][0]

    def redeem(lms_user_id, count_queries=False):
        """One redeem; timed without query capture (the debug cursor would tax the mode with more queries)."""
        if count_queries:
            with CaptureQueriesContext(connections["default"]) as default_q, \
                    CaptureQueriesContext(connections["independent"]) as independent_q:
                response = client.post(url, {"lms_user_id": lms_user_id, "content_key": content},
                                       content_type="application/json", HTTP_AUTHORIZATION=f"JWT {token}")
            assert response.status_code == 200, response.content
            return None, len(default_q) + len(independent_q)
        started = time.perf_counter()
        response = client.post(url, {"lms_user_id": lms_user_id, "content_key": content},
                               content_type="application/json", HTTP_AUTHORIZATION=f"JWT {token}")
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.content
        return elapsed, None

    def in_mode(mode, fn):
        redemption.AttemptRecorder = real_recorder if mode == "with_record" else NoRecord
        try:
            return fn()
        finally:
            redemption.AttemptRecorder = real_recorder

    # Warm the token and the cached upstream reads, as a running service would have them.
    redeem(learners.pop())
    modes = ("with_record", "without_record")
    queries = {mode: [in_mode(mode, lambda: redeem(learners.pop(), count_queries=True))[1] for _ in range(5)]
               for mode in modes}
    summary = {}
    for latency in args.latencies:
        emulator.control.set_latency(latency)
        timings = {mode: [] for mode in modes}
        for i in range(2 * args.redeems):  # alternate, so drift hits both modes alike
            mode = modes[i % 2]
            timings[mode].append(in_mode(mode, lambda: redeem(learners.pop()))[0])
        for mode in modes:
            summary[(latency, mode)] = {
                "median_ms": round(statistics.median(timings[mode]), 2),
                "p95_ms": round(percentile(timings[mode], 0.95), 2),
            }
    emulator.control.set_latency(0)

    result = {
        "benchmark": "attempt_overhead",
        "database": connections["default"].vendor,
        "redeems_per_mode_per_latency": args.redeems,
        "with_record_queries_per_redeem": statistics.mean(queries["with_record"]),
        "without_record_queries_per_redeem": statistics.mean(queries["without_record"]),
        "extra_queries_per_redeem": statistics.mean(queries["with_record"]) - statistics.mean(queries["without_record"]),
    }
    print(f"RedemptionAttempt overhead on {result['database']}, {args.redeems} redeems per mode and latency, "
          f"against the emulator (latency = its base delay on every upstream response)")
    print(f"{'latency':>8}  {'mode':<16}{'median ms':>11}{'p95 ms':>9}{'queries/redeem':>16}")
    for latency in args.latencies:
        for mode in modes:
            stats = summary[(latency, mode)]
            print(f"{latency:>6}ms  {mode:<16}{stats['median_ms']:>11}{stats['p95_ms']:>9}"
                  f"{result[mode + '_queries_per_redeem']:>16}")
            result[f"latency{latency}_{mode}_median_ms"] = stats["median_ms"]
            result[f"latency{latency}_{mode}_p95_ms"] = stats["p95_ms"]
        ratio = summary[(latency, "with_record")]["median_ms"] / summary[(latency, "without_record")]["median_ms"]
        added = summary[(latency, "with_record")]["median_ms"] - summary[(latency, "without_record")]["median_ms"]
        result[f"latency{latency}_median_latency_ratio"] = round(ratio, 4)
        result[f"latency{latency}_added_ms"] = round(added, 2)
        print(f"{'':>8}  median latency ratio (with/without) {ratio:.4f}, added {added:.2f} ms")
    print(f"extra queries per redeem: {result['extra_queries_per_redeem']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
