"""
The attempt table at scale: seed N synthetic RedemptionAttempt rows (default 1,000,000), then time the summary
endpoint, and the streaming export beside the database's own dump of the same rows.

    .venv/bin/python bench/attempt_table_scale.py [--rows 1000000] [--database-url mysql://root@127.0.0.1:3306/ea_bench]
                                                  [--reuse] [--repeat 2]

The export runs as an analyst runs it (``manage.py export_redemption_attempts --output FILE``, a process of its
own), and so does the dump: ``mariadb --batch --quick -e "SELECT <the export's columns> FROM ... WHERE started_at
>= ..."`` on MariaDB, ``sqlite3 -csv`` on SQLite, each writing a file in the same folder. Each is timed best of
``--repeat``, alternating. Peak RSS growth is the export's peak resident memory minus that of the same command
exporting no rows. Prints a table and, on its last line, the figures as one JSON object.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

from _harness import ROOT, start

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
    parser.add_argument("--repeat", type=int, default=2, help="time the export and the dump best of this many runs")
    args = parser.parse_args()
    emulator, emulator_cm, world = start(database_url=args.database_url, fresh=not args.reuse)
    try:
        run(args, world)
    finally:
        emulator_cm.__exit__(None, None, None)


def run(args, world):
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

    since = (now - timedelta(days=91)).date().isoformat()
    export = measure_export_and_dump(since, repeat=max(1, args.repeat))
    results["export_csv_all"] = {"seconds": export["export_seconds"], "rows_counted": export["export_rows"]}
    results["export_jsonl_all"] = {"seconds": export["jsonl_export_seconds"], "rows_counted": export["export_rows"]}
    results["dump_all"] = {"seconds": export["dump_seconds"], "rows_counted": export["dump_rows"]}

    figures = {
        "benchmark": "attempt_table_scale", "database": connections["default"].vendor, "rows": written,
        "seed_seconds": round(seed_seconds, 1),
        **{f"{name}_seconds": value["seconds"] for name, value in results.items()},
        **export,
    }
    print(f"RedemptionAttempt table at {written:,} rows on {figures['database']} (seeded in {seed_seconds:.1f}s)")
    print(f"{'query':<32}{'seconds (best)':>22}{'rows':>12}")
    for name, value in results.items():
        print(f"{name:<32}{value['seconds']:>22}{value['rows_counted']:>12}")
    print(f"export csv: {figures['export_rows_per_second']:,} rows/s, {figures['export_to_dump_ratio']}x the dump "
          f"({figures['dump_command']}); jsonl {figures['jsonl_export_to_dump_ratio']}x; "
          f"peak RSS growth {figures['export_peak_rss_growth_mb']} MB (csv), "
          f"{figures['jsonl_export_peak_rss_growth_mb']} MB (jsonl)")
    print(json.dumps(figures))


def measure_export_and_dump(since, repeat):
    """Time the export command and the database's dump of the same rows, each in its own process."""
    from django.db import connections

    from enterprise_access.apps.subsidy_access_policy.attempt_export import export_columns
    from enterprise_access.apps.subsidy_access_policy.models import RedemptionAttempt

    settings = connections["default"].settings_dict
    vendor = connections["default"].vendor
    select = (f"SELECT {', '.join(column.name for column in export_columns())} "
              f"FROM {RedemptionAttempt._meta.db_table} WHERE started_at >= '{since}'")
    if vendor == "mysql":
        client = shutil.which("mariadb") or shutil.which("mysql")
        dump = [client, "--batch", "--quick", f"--host={settings['HOST'] or '127.0.0.1'}",
                f"--port={settings['PORT'] or 3306}", f"--user={settings['USER']}", settings["NAME"], "-e", select]
        database_url = os.environ["DATABASE_URL"]
        if settings["PASSWORD"]:
            dump.insert(1, f"--password={settings['PASSWORD']}")
    else:
        dump = [shutil.which("sqlite3"), "-csv", settings["NAME"], select]
        database_url = f"sqlite:///{settings['NAME']}"
    workdir = tempfile.mkdtemp(prefix="ea-export-bench-")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "enterprise_access.settings.test", "DATABASE_URL": database_url}

    def export(fmt, since_day=since):
        output = os.path.join(workdir, f"export.{fmt}")
        command = [sys.executable, "manage.py", "export_redemption_attempts", "--since", since_day,
                   "--format", fmt, "--output", output]
        seconds, peak_kb = run_timed(command, env=env, stdout=subprocess.DEVNULL)
        return seconds, peak_kb, output

    def dump_once():
        output = os.path.join(workdir, "dump.txt")
        with open(output, "w") as handle:
            seconds, _ = run_timed(dump, env=os.environ, stdout=handle)
        return seconds, output

    try:
        _, idle_kb, _ = export("csv", since_day="2999-01-01")  # the same command with no rows: its footprint
        dump_seconds, export_seconds, jsonl_seconds, csv_peak_kb, jsonl_peak_kb = [], [], [], 0, 0
        for _ in range(repeat):  # alternating, so a busy moment on the machine hits both alike
            seconds, dump_file = dump_once()
            dump_seconds.append(seconds)
            seconds, peak_kb, csv_file = export("csv")
            export_seconds.append(seconds)
            csv_peak_kb = max(csv_peak_kb, peak_kb)
            seconds, peak_kb, jsonl_file = export("jsonl")
            jsonl_seconds.append(seconds)
            jsonl_peak_kb = max(jsonl_peak_kb, peak_kb)
        dump_rows = count_lines(dump_file) - (1 if vendor == "mysql" else 0)  # mariadb --batch prints a header
        export_rows = count_lines(csv_file) - 1
        jsonl_rows = count_lines(jsonl_file)
        if not export_rows == jsonl_rows == dump_rows:
            raise SystemExit(f"row counts differ: csv export {export_rows}, jsonl export {jsonl_rows}, "
                             f"dump {dump_rows}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best_export, best_dump, best_jsonl = min(export_seconds), min(dump_seconds), min(jsonl_seconds)
    return {
        "export_rows": export_rows, "export_seconds": round(best_export, 2),
        "export_rows_per_second": round(export_rows / best_export),
        "dump_rows": dump_rows, "dump_seconds": round(best_dump, 2), "dump_command": " ".join(dump[:2]),
        "export_to_dump_ratio": round(best_export / best_dump, 2),
        "export_peak_rss_growth_mb": round((csv_peak_kb - idle_kb) / 1024, 1),
        "jsonl_export_seconds": round(best_jsonl, 2), "jsonl_export_to_dump_ratio": round(best_jsonl / best_dump, 2),
        "jsonl_export_peak_rss_growth_mb": round((jsonl_peak_kb - idle_kb) / 1024, 1),
        "export_idle_rss_mb": round(idle_kb / 1024, 1),
    }


def run_timed(command, *, env, stdout):
    """Run a command to completion; return (wall seconds, its peak resident memory in KB). Fails loudly."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)  # wait4: this child's own rusage (peak RSS)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{command[0]} {' '.join(command[1:3])} failed ({process.returncode}):\n"
                             f"{errors.read().decode(errors='replace')}")
    return seconds, usage.ru_maxrss


def count_lines(path):
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


if __name__ == "__main__":
    main()
