"""
The attempt table at scale: seed N synthetic RedemptionAttempt rows (default 1,000,000), then time the summary
endpoint and the streaming export on it.

    .venv/bin/python bench/attempt_table_scale.py [--rows 1000000] [--database-url mysql://root@127.0.0.1:3306/ea_bench]

Prints a table and, on its last line, the figures as one JSON object.
"""
import argparse
import json
import os
import random
import resource
import tempfile
import time
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

from _harness import start

OUTCOME_WEIGHTS = [("redeemed", 70), ("not_redeemable", 20), ("subsidy_refused", 4), ("policy_busy", 2),
                   ("upstream_unavailable", 3), ("unexpected_error", 1)]
REASONS = ["content_not_in_catalog", "beyond_enrollment_deadline", "learner_already_redeemed_content",
           "policy_spend_limit_reached", "learner_max_enrollments_reached", "learner_not_in_enterprise"]
COLUMNS = ["uuid", "policy_uuid", "enterprise_customer_uuid", "lms_user_id", "content_key", "source", "request_id",
           "can_redeem", "reason", "transaction_uuid", "transaction_state", "fulfillment_identifier",
           "content_price", "error_status", "error_code", "error_message", "outcome", "already_redeemed",
           "started_at", "finished_at", "can_redeem_ms", "subsidy_call_ms"]


def seed_rows(total, customers, policies_by_customer, now):
    from django.db import connections

    connection = connections["default"]
    ops = connection.ops
    table = "subsidy_access_policy_redemptionattempt"
    sql = f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    outcomes = [name for name, weight in OUTCOME_WEIGHTS for _ in range(weight)]
    rng = random.Random(20261121)
    as_uuid = (lambda value: value.hex) if connection.vendor in ("sqlite", "mysql") else str
    batch, written = [], 0
    span = timedelta(days=90)
    start_time = now - span
    first_key = int(start_time.timestamp() * 1000) << 16
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for i in range(total):
            customer = customers[i % len(customers)]
            policy = rng.choice(policies_by_customer[customer])
            outcome = rng.choice(outcomes)
            # Rows arrive in time order, as real traffic does, with keys that grow with time: a B-tree then
            # appends instead of splitting pages all over, and seeding a million rows takes minutes, not an hour.
            when = start_time + span * i / total
            redeemed = outcome == "redeemed"
            batch.append((
                as_uuid(UUID(int=((first_key + i) << 64) | rng.getrandbits(64), version=4)), as_uuid(policy), as_uuid(customer), 100_000 + rng.randrange(50_000),
                f"course-v1:BenchU+C{rng.randrange(500)}+1T2027", "learner_redeem_api", "",
                outcome != "not_redeemable" if outcome != "upstream_unavailable" else None,
                rng.choice(REASONS) if outcome == "not_redeemable" else "",
                as_uuid(uuid4()) if redeemed else None, "committed" if redeemed else "", "", rng.randrange(5000, 30000),
                422 if outcome == "subsidy_refused" else None,
                "enrollment_error" if outcome == "subsidy_refused" else "", "", outcome, False,
                ops.adapt_datetimefield_value(when), ops.adapt_datetimefield_value(when + timedelta(milliseconds=40)),
                rng.randrange(5, 60), rng.randrange(10, 90) if redeemed else None,
            ))
            if len(batch) == 10_000:
                cursor.executemany(sql, batch)
                written += len(batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
            written += len(batch)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return written, time.perf_counter() - started


def timed(fn, repeat=3):
    best = None
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        elapsed = time.perf_counter() - started
        best = elapsed if best is None or elapsed < best else best
    return value, best


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--reuse", action="store_true",
                        help="with --database-url: keep the rows a previous run seeded (migrations still apply)")
    args = parser.parse_args()
    emulator, emulator_cm, world = start(database_url=args.database_url, fresh=not args.reuse)
    try:
        run(args, world)
    finally:
        emulator_cm.__exit__(None, None, None)


def run(args, world):
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    from enterprise_access.devtools.tokens import mint_jwt

    from enterprise_access.apps.subsidy_access_policy.models import RedemptionAttempt

    now = datetime.now(timezone.utc)
    customers = [UUID(world["enterprise_customer_uuid"])] + [uuid4() for _ in range(4)]
    policies_by_customer = {c: [uuid4() for _ in range(10)] for c in customers}
    existing = RedemptionAttempt.objects.count() if args.reuse else 0
    if existing >= args.rows:
        # Reusing an earlier run's rows: its timestamps end when it ran, and its policies are its own.
        written, seed_seconds = existing, 0.0
        now = RedemptionAttempt.objects.order_by("-started_at").values_list("started_at", flat=True).first()
        policies_by_customer[customers[0]] = list(
            RedemptionAttempt.objects.filter(enterprise_customer_uuid=customers[0])
            .values_list("policy_uuid", flat=True)[:1])
    else:
        written, seed_seconds = seed_rows(args.rows, customers, policies_by_customer, now)

    client = Client()
    customer = str(customers[0])
    operator = {"HTTP_AUTHORIZATION": f"JWT {mint_jwt(lms_user_id=900, roles=['enterprise_openedx_operator:*'])}"}
    admin = {"HTTP_AUTHORIZATION": f"JWT {mint_jwt(lms_user_id=90, roles=[f'enterprise_admin:{customer}'])}"}
    month_ago = (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    results = {}

    def summary(headers, **params):
        response = client.get("/api/v1/redemption-attempts/summary/", params, **headers)
        assert response.status_code == 200, response.content
        return response.json()["total"]

    cases = {
        "summary_admin_30d_by_reason": (admin, {"enterprise_customer_uuid": customer, "created_after": month_ago,
                                                "group_by": "reason"}),
        "summary_admin_30d_by_day": (admin, {"enterprise_customer_uuid": customer, "created_after": month_ago,
                                             "group_by": "day"}),
        "summary_policy_by_day": (operator, {"policy_uuid": str(policies_by_customer[customers[0]][0]),
                                             "group_by": "day"}),
        "summary_all_rows_by_policy": (operator, {"group_by": "policy"}),
    }
    for name, (headers, params) in cases.items():
        rows, seconds = timed(lambda: summary(headers, **params))
        results[name] = {"seconds": round(seconds, 3), "rows_counted": rows}

    list_page, list_seconds = timed(lambda: client.get("/api/v1/redemption-attempts/",
                                                       {"enterprise_customer_uuid": customer}, **admin))
    results["list_first_page"] = {"seconds": round(list_seconds, 3), "rows_counted": len(list_page.json()["results"])}

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as handle:
        output = handle.name
    started = time.perf_counter()
    call_command("export_redemption_attempts", since=(now - timedelta(days=91)).date().isoformat(), format="csv",
                 output=output, stderr=open(os.devnull, "w"))
    export_seconds = time.perf_counter() - started
    exported = sum(1 for _ in open(output)) - 1
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    os.unlink(output)
    results["export_csv_all"] = {"seconds": round(export_seconds, 3), "rows_counted": exported}

    figures = {
        "benchmark": "attempt_table_scale", "database": connections["default"].vendor, "rows": written,
        "seed_seconds": round(seed_seconds, 1),
        **{f"{name}_seconds": value["seconds"] for name, value in results.items()},
        "export_rows": exported, "export_rows_per_second": round(exported / export_seconds),
        "export_peak_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
    }
    print(f"RedemptionAttempt table at {written:,} rows on {figures['database']} (seeded in {seed_seconds:.1f}s)")
    print(f"{'query':<32}{'seconds (best of 3)':>22}{'rows':>12}")
    for name, value in results.items():
        print(f"{name:<32}{value['seconds']:>22}{value['rows_counted']:>12}")
    print(f"export: {figures['export_rows_per_second']:,} rows/s, peak RSS growth {figures['export_peak_rss_growth_mb']} MB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
