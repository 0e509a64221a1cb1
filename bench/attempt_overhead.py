"""
What the RedemptionAttempt record costs a redemption: the redeem endpoint against the live emulator, in one
run, with and without the record, alternating so that drift hits both alike.

    .venv/bin/python bench/attempt_overhead.py [--redeems 150] [--database-url mysql://root@127.0.0.1:3306/ea_bench]

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
    parser.add_argument("--redeems", type=int, default=150, help="redemptions per mode")
    parser.add_argument("--database-url", help="run on this database instead of a throwaway SQLite file")
    parser.add_argument("--redis-url", help="use this Redis for the cache and lock")
    args = parser.parse_args()

    emulator, emulator_cm, world = start(learners=2 * args.redeems + 10, database_url=args.database_url,
                                         redis_url=args.redis_url)
    try:
        run(args, world)
    finally:
        emulator_cm.__exit__(None, None, None)


def run(args, world):
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from enterprise_access.apps.core.jwt import mint_jwt
    from enterprise_access.apps.subsidy_access_policy import redemption

    class NoRecord:
        """Stands in for the recorder to measure the workflow without its audit row."""

        uuid = None
        row = None

        def __init__(self, **fields):
            self.fields = {}

        def note(self, **fields):
            self.fields.update(fields)

        def finish(self, **fields):
            pass

    real_recorder = redemption.AttemptRecorder
    client = Client()
    token = mint_jwt(lms_user_id=900, roles=["enterprise_openedx_operator:*"])
    policy = world["policies"]["per_learner_enrollment"]
    # Lift the demo policy's spend limit: this measures the record's cost, not the limit.
    from enterprise_access.apps.subsidy_access_policy.models import SubsidyAccessPolicy

    SubsidyAccessPolicy.objects.filter(uuid=policy).update(spend_limit=None)
    url = f"/api/v1/policy-redemption/{policy}/redeem/"
    learners = [lr["lms_user_id"] for lr in world["learners"]]
    content = world["content"]["ordinary"][0]

    def redeem(lms_user_id):
        with CaptureQueriesContext(connections["default"]) as default_q, \
                CaptureQueriesContext(connections["independent"]) as independent_q:
            started = time.perf_counter()
            response = client.post(url, {"lms_user_id": lms_user_id, "content_key": content},
                                   content_type="application/json", HTTP_AUTHORIZATION=f"JWT {token}")
            elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.content
        return elapsed, len(default_q) + len(independent_q)

    # Warm the token and the cached upstream reads, as a running service would have them.
    redeem(learners.pop())
    figures = {"with_record": {"ms": [], "queries": []}, "without_record": {"ms": [], "queries": []}}
    for i in range(2 * args.redeems):
        mode = "with_record" if i % 2 == 0 else "without_record"
        redemption.AttemptRecorder = real_recorder if mode == "with_record" else NoRecord
        try:
            ms, queries = redeem(learners.pop())
        finally:
            redemption.AttemptRecorder = real_recorder
        figures[mode]["ms"].append(ms)
        figures[mode]["queries"].append(queries)

    summary = {}
    for mode, values in figures.items():
        summary[mode] = {
            "median_ms": round(statistics.median(values["ms"]), 2),
            "p95_ms": round(percentile(values["ms"], 0.95), 2),
            "queries_per_redeem": round(statistics.mean(values["queries"]), 2),
        }
    result = {
        "benchmark": "attempt_overhead",
        "database": connections["default"].vendor,
        "redeems_per_mode": args.redeems,
        **{f"{mode}_{k}": v for mode, stats in summary.items() for k, v in stats.items()},
        "median_latency_ratio": round(summary["with_record"]["median_ms"] / summary["without_record"]["median_ms"], 4),
        "extra_queries_per_redeem": round(summary["with_record"]["queries_per_redeem"]
                                          - summary["without_record"]["queries_per_redeem"], 2),
    }
    print(f"RedemptionAttempt overhead on {result['database']}, {args.redeems} redeems per mode, against the emulator")
    print(f"{'mode':<16}{'median ms':>12}{'p95 ms':>10}{'queries/redeem':>16}")
    for mode, stats in summary.items():
        print(f"{mode:<16}{stats['median_ms']:>12}{stats['p95_ms']:>10}{stats['queries_per_redeem']:>16}")
    print(f"median latency ratio (with/without): {result['median_latency_ratio']}   "
          f"extra queries per redeem: {result['extra_queries_per_redeem']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
