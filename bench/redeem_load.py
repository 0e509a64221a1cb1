"""
Load benchmark of the redeem endpoint on the production-like stack (gunicorn -w 4, production settings, MariaDB,
Redis, the emulator at 50 ms base latency). Starts its own throwaway copy of the stack (database
``enterprise_access_bench``, Redis db 12, ports 18002/18272) and stops it at the end.

    .venv/bin/python bench/redeem_load.py [--concurrency 200] [--limited-k 37] [--repeats 50] [--latency-ms 50]

Scenarios:
  A  N concurrent redemptions by distinct learners on one policy whose funds cover them all;
  B  the same on a policy whose spend limit covers only K: exactly K succeed, spend <= limit, no learner twice;
  C  M concurrent repeats of one learner's redemption: exactly one transaction.
Every scenario: RedemptionAttempt rows added == requests sent, none left in progress.

Prints a table and, on its last line, the figures as one JSON object.
"""
import argparse
import collections
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prodlike import ROOT, mint_token, mysql_connect, start_stack  # noqa: E402

SPENT_STATES = {"committed", "pending", "created"}
REQUEST_TIMEOUT = 300  # seconds; requests queue in gunicorn's backlog behind the policy lock


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


class Bench:
    def __init__(self, stack, concurrency):
        self.stack = stack
        self.world = stack.world
        self.customer = self.world["enterprise_customer_uuid"]
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(max_workers=concurrency)
        self.db = mysql_connect(stack.db_name)

    def session(self):
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def control(self, method, path, **kwargs):
        response = requests.request(method, f"{self.stack.emulator_url}/_control{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def sql(self, query, args=()):
        with self.db.cursor() as cursor:
            cursor.execute(query, args)
            return cursor.fetchall()

    def attempt_counts(self):
        total = self.sql("SELECT COUNT(*) FROM subsidy_access_policy_redemptionattempt")[0][0]
        in_progress = self.sql("SELECT COUNT(*) FROM subsidy_access_policy_redemptionattempt "
                               "WHERE outcome = 'in_progress'")[0][0]
        return total, in_progress

    def transactions(self, subsidy_uuid):
        return self.control("GET", "/transactions", params={"subsidy_uuid": subsidy_uuid})

    def redeem(self, policy_uuid, lms_user_id, content_key, token):
        url = f"{self.stack.service_url}/api/v1/policy-redemption/{policy_uuid}/redeem/"
        started = time.perf_counter()
        try:
            response = self.session().post(url, json={"lms_user_id": lms_user_id, "content_key": content_key},
                                           headers={"Authorization": f"JWT {token}"}, timeout=REQUEST_TIMEOUT)
            status, body = response.status_code, response.text[:300]
        except requests.RequestException as exc:
            status, body = 0, f"{type(exc).__name__}: {exc}"
        return status, (time.perf_counter() - started) * 1000, body

    def run(self, name, policy_uuid, jobs):
        """jobs: [(lms_user_id, content_key)], all sent at once from the pool. Returns the scenario's figures."""
        tokens = {uid: mint_token(uid, [f"enterprise_learner:{self.customer}"]) for uid, _ in jobs}
        before_rows, _ = self.attempt_counts()
        gate = threading.Barrier(len(jobs))

        def one(job):
            uid, content_key = job
            gate.wait(timeout=60)  # release every request at the same instant
            return self.redeem(policy_uuid, uid, content_key, tokens[uid])

        started = time.perf_counter()
        results = list(self.pool.map(one, jobs))
        wall = time.perf_counter() - started
        after_rows, in_progress = self.attempt_counts()
        statuses = collections.Counter(status for status, _, _ in results)
        latencies = [ms for _, ms, _ in results]
        samples = {}
        for status, _, body in results:
            if status != 200:
                samples.setdefault(str(status), body)
        return {
            "scenario": name, "requests": len(jobs), "ok_200": statuses.get(200, 0),
            "status_422": statuses.get(422, 0), "status_429": statuses.get(429, 0),
            "status_5xx": sum(n for s, n in statuses.items() if s >= 500), "errors": statuses.get(0, 0),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "p50_ms": round(percentile(latencies, 0.5), 1), "p95_ms": round(percentile(latencies, 0.95), 1),
            "max_ms": round(max(latencies), 1), "wall_s": round(wall, 2),
            "throughput_rps": round(len(jobs) / wall, 2),
            "attempt_rows_added": after_rows - before_rows, "attempt_rows_in_progress": in_progress,
            "lost_attempt_rows": len(jobs) - (after_rows - before_rows),
            "sample_non_200": samples,
        }


def learner_transactions(transactions, policy_uuid, learners, content_key=None):
    learners = set(learners)
    return [tx for tx in transactions
            if tx.get("lms_user_id") in learners and str(tx.get("subsidy_access_policy_uuid")) == str(policy_uuid)
            and tx.get("state") in SPENT_STATES and (content_key is None or tx.get("content_key") == content_key)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=200, help="concurrent learners in scenarios A and B")
    parser.add_argument("--limited-k", type=int, default=37, help="scenario B: redemptions the spend limit covers")
    parser.add_argument("--repeats", type=int, default=50, help="scenario C: concurrent repeats by one learner")
    parser.add_argument("--latency-ms", type=int, default=50, help="emulator base latency")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    args = parser.parse_args()
    n, k, m = args.concurrency, args.limited_k, args.repeats

    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731 (progress goes to stderr)
    say("Starting the production-like stack (fresh database enterprise_access_bench)...")
    stack = start_stack(db_name="enterprise_access_bench", redis_db=12, emulator_port=18272, service_port=18002,
                        learners=2 * n + 20, fresh=True, workers=args.workers, log_dir=ROOT / "var" / "bench-stack",
                        say=say)
    try:
        bench = Bench(stack, max(n, m))
        world = stack.world
        policy_a = world["policies"]["per_learner_enrollment"]
        policy_b = world["policies"]["per_learner_spend"]
        subsidy_a = world["subsidies"]["per_learner_enrollment"]
        subsidy_b = world["subsidies"]["per_learner_spend"]
        content, content_c = world["content"]["ordinary"][0], world["content"]["ordinary"][1]
        price = world["prices_cents"][content]
        extra = [lr["lms_user_id"] for lr in world["learners"] if lr["lms_user_id"] >= 10_001]
        learners_a, learners_b, learner_c = extra[:n], extra[n:2 * n], extra[2 * n]
        warm = [lr["lms_user_id"] for lr in world["learners"] if lr["lms_user_id"] < 10_001]

        # Warm every worker's OAuth token and the cached upstream reads on both policies (demo learners only).
        for _ in range(3):
            for policy in (policy_a, policy_b):
                bench.run("warm-up", policy, [(uid, world["content"]["ordinary"][2]) for uid in warm])
        bench.control("POST", "/latency", json={"delay_ms": args.latency_ms})
        say(f"Emulator base latency {args.latency_ms} ms.")

        # A: funds cover everyone.
        say(f"Scenario A: {n} distinct learners, funds for all...")
        a = bench.run("A_funds_cover_all", policy_a, [(uid, content) for uid in learners_a])
        txs = learner_transactions(bench.transactions(subsidy_a), policy_a, learners_a, content)
        per_learner = collections.Counter(tx["lms_user_id"] for tx in txs)
        a.update(transactions=len(txs), duplicate_learners=sum(1 for c in per_learner.values() if c > 1),
                 pct_429=round(100.0 * a["status_429"] / n, 2))

        # B: the policy's spend limit covers exactly K more redemptions.
        spent_b = -sum(int(tx["quantity"]) for tx in bench.transactions(subsidy_b)
                       if str(tx.get("subsidy_access_policy_uuid")) == policy_b and tx.get("state") in SPENT_STATES)
        limit = spent_b + k * price + price // 2
        bench.sql("UPDATE subsidy_access_policy_subsidyaccesspolicy SET spend_limit = %s WHERE uuid = %s",
                  (limit, policy_b))
        stored = bench.sql("SELECT spend_limit FROM subsidy_access_policy_subsidyaccesspolicy WHERE uuid = %s",
                           (policy_b,))
        assert stored and stored[0][0] == limit, f"could not set the spend limit of {policy_b}: {stored}"
        say(f"Scenario B: {n} distinct learners, spend limit {limit} covers {k} (spent before {spent_b})...")
        b = bench.run("B_limit_covers_k", policy_b, [(uid, content) for uid in learners_b])
        all_b = [tx for tx in bench.transactions(subsidy_b)
                 if str(tx.get("subsidy_access_policy_uuid")) == policy_b and tx.get("state") in SPENT_STATES]
        spent_after = -sum(int(tx["quantity"]) for tx in all_b)
        txs = learner_transactions(all_b, policy_b, learners_b)
        per_learner = collections.Counter(tx["lms_user_id"] for tx in txs)
        b.update(k=k, spend_limit=limit, spent_total=spent_after, overspend=max(0, spent_after - limit),
                 transactions=len(txs), duplicate_learners=sum(1 for c in per_learner.values() if c > 1),
                 exactly_k_succeeded=(b["ok_200"] == k and len(txs) == k))

        # C: one learner, many concurrent repeats.
        say(f"Scenario C: {m} concurrent repeats by learner {learner_c}...")
        c = bench.run("C_one_learner_repeats", policy_a, [(learner_c, content_c)] * m)
        txs = learner_transactions(bench.transactions(subsidy_a), policy_a, [learner_c], content_c)
        c.update(transactions=len(txs), duplicate_learners=int(len(txs) > 1))
        scenarios = [a, b, c]
    finally:
        stack.stop()

    cols = [("scenario", 22), ("requests", 8), ("ok_200", 6), ("status_422", 10), ("status_429", 10),
            ("status_5xx", 10), ("errors", 6), ("p50_ms", 9), ("p95_ms", 9), ("throughput_rps", 14),
            ("transactions", 12), ("duplicate_learners", 18), ("attempt_rows_added", 18),
            ("attempt_rows_in_progress", 24)]
    print("\nRedeem load on the production-like stack "
          f"(gunicorn -w {args.workers} sync, MariaDB, Redis, emulator latency {args.latency_ms} ms)")
    print("  ".join(name.rjust(width) for name, width in cols))
    for row in scenarios:
        print("  ".join(str(row.get(name, "")).rjust(width) for name, width in cols))
    print(f"B: spend limit {b['spend_limit']}, spent {b['spent_total']}, overspend {b['overspend']}, "
          f"exactly K={k} succeeded: {b['exactly_k_succeeded']}")
    for row in scenarios:
        if row["sample_non_200"]:
            print(f"{row['scenario']} sample non-200 bodies: {json.dumps(row['sample_non_200'])[:600]}")

    targets = {
        "zero_overspend": b["overspend"] == 0,
        "exactly_k": b["exactly_k_succeeded"],
        "zero_duplicates": all(r["duplicate_learners"] == 0 for r in scenarios) and c["transactions"] == 1,
        "zero_lost_attempt_rows": all(r["lost_attempt_rows"] == 0 and r["attempt_rows_in_progress"] == 0
                                      for r in scenarios),
        "zero_5xx": all(r["status_5xx"] == 0 and r["errors"] == 0 for r in scenarios),
        "under_1pct_429_when_funded": a["pct_429"] < 1.0,
        "all_funded_succeeded": a["ok_200"] == n and a["transactions"] == n,
    }
    print("Targets: " + ", ".join(f"{name}={'PASS' if ok else 'FAIL'}" for name, ok in targets.items()))
    summary = {"benchmark": "redeem_load", "workers": args.workers, "latency_ms": args.latency_ms,
               "targets_met": all(targets.values()), "targets": targets,
               "scenarios": {r["scenario"]: {key: value for key, value in r.items()
                                             if key not in ("scenario", "sample_non_200")} for r in scenarios}}
    print(json.dumps(summary, sort_keys=True))
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
