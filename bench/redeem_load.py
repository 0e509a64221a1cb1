"""
Load benchmark of the redeem endpoint on the production-like stack (gunicorn gthread 4 x 32, production settings,
MariaDB, Redis, the emulator at 50 ms base latency). Starts its own throwaway copy of the stack (database
``enterprise_access_bench``, Redis db 12, ports 18002/18272) and stops it at the end.

    .venv/bin/python bench/redeem_load.py [--concurrency 200] [--pairs 3] [--latency-ms 50] [--threads 32]

Scenarios (decision records 0010 and 0011):
  A      N learners at once on ONE policy whose funds cover them all (the hot policy);
  P      N learners at once on N policies sharing A's subsidy (no hot policy); A and P alternate --pairs times,
         hot_policy_efficiency = A's successful redeems/s / P's (median of the pairs);
  iso    3 s into each A, one redeem on an idle policy of another customer; isolation_ratio = its latency / the
         same kind of redeem unloaded, measured in the same run;
  B      N learners on a policy whose spend limit covers only K: exactly K succeed, no overspend;
  C      M concurrent repeats of one learner's redemption: exactly one transaction;
  chaos  N learners on one tight policy while the emulator answers creates late (they still write), with 429
         bursts and dropped connections (before and after the write), and one gunicorn worker is SIGKILLed
         mid-run; then reconcile_redemptions; the ledger is counted against the limit and the attempt rows;
  conn   upstream TCP connections the emulator accepted per warm redeem.
Every scenario also counts RedemptionAttempt rows against requests sent.

Prints a table and, on its last line, the figures as one JSON object.
"""
import argparse
import collections
import json
import os
import signal
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prodlike import ROOT, mint_token, mysql_connect, start_stack, worker_pids  # noqa: E402

SPENT_STATES = {"committed", "pending", "created"}
REQUEST_TIMEOUT = 120
CREATE = r"/admin/transactions/?$"
# The stack's read timeout: the chaos scenario's late creates answer after it (and still write).
READ_TIMEOUT_SECONDS = 2
SECOND_CUSTOMER = "c0ffee00-0000-4000-8000-00000000b0b0"


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
        self.pool = ThreadPoolExecutor(max_workers=concurrency + 4)
        self.db = mysql_connect(stack.db_name)
        self.tokens = {}
        self.side_requests = 0  # requests sent beside a scenario (the isolation probe): their rows are not its own

    def session(self):
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def control(self, method, path, **kwargs):
        response = requests.request(method, f"{self.stack.emulator_url}/_control{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def sql(self, query, args=()):
        with self.db.cursor() as cursor:
            cursor.execute(query, args)
            return cursor.fetchall()

    def token(self, lms_user_id, customer=None):
        key = (lms_user_id, customer or self.customer)
        if key not in self.tokens:
            self.tokens[key] = mint_token(lms_user_id, [f"enterprise_learner:{customer or self.customer}"])
        return self.tokens[key]

    def attempt_counts(self):
        """Attempt rows in all, and rows still open (in progress, or uncertain until reconciled)."""
        total = self.sql("SELECT COUNT(*) FROM subsidy_access_policy_redemptionattempt")[0][0]
        still_open = self.sql("SELECT COUNT(*) FROM subsidy_access_policy_redemptionattempt "
                              "WHERE outcome IN ('in_progress', 'uncertain')")[0][0]
        return total, still_open

    def transactions(self, subsidy_uuid):
        return self.control("GET", "/transactions", params={"subsidy_uuid": subsidy_uuid})

    def redeem(self, policy_uuid, lms_user_id, content_key, customer=None):
        url = f"{self.stack.service_url}/api/v1/policy-redemption/{policy_uuid}/redeem/"
        started = time.perf_counter()
        try:
            response = self.session().post(url, json={"lms_user_id": lms_user_id, "content_key": content_key},
                                           headers={"Authorization": f"JWT {self.token(lms_user_id, customer)}"},
                                           timeout=REQUEST_TIMEOUT)
            status, body = response.status_code, response.text[:300]
        except requests.RequestException as exc:
            status, body = 0, f"{type(exc).__name__}: {exc}"
        return status, (time.perf_counter() - started) * 1000, body

    def run(self, name, jobs, *, during=None):
        """
        jobs: [(policy_uuid, lms_user_id, content_key)], all released at once from the pool. ``during(started)``
        runs in its own thread meanwhile. Returns the scenario's figures.
        """
        for _, uid, _ in jobs:
            self.token(uid)
        before_rows, open_before = self.attempt_counts()
        side_before = self.side_requests
        gate = threading.Barrier(len(jobs) + 1)

        def one(job):
            gate.wait(timeout=60)  # release every request at the same instant
            return self.redeem(*job)

        futures = [self.pool.submit(one, job) for job in jobs]
        gate.wait(timeout=60)
        started = time.perf_counter()
        side = None
        if during is not None:
            side = threading.Thread(target=during, args=(started,))
            side.start()
        results = [future.result() for future in futures]
        wall = time.perf_counter() - started
        if side is not None:
            side.join(REQUEST_TIMEOUT)
        after_rows, open_after = self.attempt_counts()
        after_rows -= self.side_requests - side_before
        statuses = collections.Counter(status for status, _, _ in results)
        latencies = [ms for _, ms, _ in results]
        samples = {}
        for status, _, body in results:
            if status != 200:
                samples.setdefault(str(status), body)
        ok = statuses.get(200, 0)
        return {
            "scenario": name, "requests": len(jobs), "ok_200": ok, "status_202": statuses.get(202, 0),
            "status_422": statuses.get(422, 0), "status_429": statuses.get(429, 0),
            "status_5xx": sum(n for s, n in statuses.items() if s >= 500), "errors": statuses.get(0, 0),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "p50_ms": round(percentile(latencies, 0.5), 1), "p95_ms": round(percentile(latencies, 0.95), 1),
            "max_ms": round(max(latencies), 1), "wall_s": round(wall, 2),
            "redeems_per_s": round(ok / wall, 2),
            "attempt_rows_added": after_rows - before_rows, "attempt_rows_open": open_after - open_before,
            "lost_attempt_rows": len(jobs) - (after_rows - before_rows),
            "sample_non_200": samples,
        }


def spent_under(transactions, policies):
    policies = {str(p) for p in policies}
    return -sum(int(tx["quantity"]) + int((tx.get("reversal") or {}).get("quantity") or 0)
                for tx in transactions
                if str(tx.get("subsidy_access_policy_uuid")) in policies and tx.get("state") in SPENT_STATES)


def duplicates(transactions, policies=None):
    pairs = collections.Counter((tx.get("lms_user_id"), tx.get("content_key")) for tx in transactions
                                if tx.get("lms_user_id") is not None and tx.get("state") in SPENT_STATES
                                and (policies is None or str(tx.get("subsidy_access_policy_uuid")) in policies))
    return sum(count - 1 for count in pairs.values() if count > 1)


def copy_policy(bench, source_uuid, count, **changes):
    """``count`` copies of a policy row (new uuids), with ``changes`` applied: the P scenario's policies."""
    columns = [row[0] for row in bench.sql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
        "AND table_name = 'subsidy_access_policy_subsidyaccesspolicy' ORDER BY ordinal_position")]
    uuids = [str(uuid.uuid4()) for _ in range(count)]
    for new in uuids:
        values = ", ".join("%s" if col == "uuid" else ("%s" if col in changes else f"`{col}`") for col in columns)
        args = [new.replace("-", "") if col == "uuid" else changes[col] for col in columns
                if col == "uuid" or col in changes]
        bench.sql(f"INSERT INTO subsidy_access_policy_subsidyaccesspolicy ({', '.join(f'`{c}`' for c in columns)}) "
                  f"SELECT {values} FROM subsidy_access_policy_subsidyaccesspolicy WHERE uuid = %s",
                  (*args, source_uuid.replace("-", "")))
    return uuids


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=200, help="learners at once in A, P, B and chaos")
    parser.add_argument("--pairs", type=int, default=3, help="A/P pairs, alternating")
    parser.add_argument("--limited-k", type=int, default=37, help="scenario B: redemptions the spend limit covers")
    parser.add_argument("--repeats", type=int, default=50, help="scenario C: concurrent repeats by one learner")
    parser.add_argument("--latency-ms", type=int, default=50, help="emulator base latency")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=32, help="threads per gunicorn worker")
    args = parser.parse_args()
    n, k, m = args.concurrency, args.limited_k, args.repeats

    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731 (progress goes to stderr)
    say("Starting the production-like stack (fresh database enterprise_access_bench)...")
    learners_needed = (2 * args.pairs + 3) * n + args.workers * args.threads + 50
    stack = start_stack(db_name="enterprise_access_bench", redis_db=12, emulator_port=18272, service_port=18002,
                        learners=learners_needed, fresh=True, workers=args.workers, threads=args.threads,
                        log_dir=ROOT / "var" / "bench-stack", say=say,
                        env_extra={"UPSTREAM_READ_TIMEOUT": str(READ_TIMEOUT_SECONDS)})
    try:
        bench = Bench(stack, max(n, m, args.workers * args.threads))
        world = stack.world
        policy_a = world["policies"]["per_learner_enrollment"]
        policy_b = world["policies"]["per_learner_spend"]
        subsidy_a = world["subsidies"]["per_learner_enrollment"]
        subsidy_b = world["subsidies"]["per_learner_spend"]
        content, content_c = world["content"]["ordinary"][0], world["content"]["ordinary"][1]
        price = world["prices_cents"][content]
        extra = iter(lr["lms_user_id"] for lr in world["learners"] if lr["lms_user_id"] >= 10_001)

        def learners(count):
            return [next(extra) for _ in range(count)]

        warm = [lr["lms_user_id"] for lr in world["learners"] if lr["lms_user_id"] < 10_001]

        # Deep pockets for the throughput scenarios: the subsidy and the policy limit are not what is measured.
        subsidy_doc = {"uuid": subsidy_a, "enterprise_customer_uuid": bench.customer, "title": "bench",
                       "starting_balance": 2_000_000_000, "active_datetime": "2025-01-01T00:00:00Z",
                       "expiration_datetime": "2030-12-31T23:59:59Z", "unit": "usd_cents"}
        bench.control("POST", "/seed", json={"subsidies": [subsidy_doc]})
        bench.sql("UPDATE subsidy_access_policy_subsidyaccesspolicy SET spend_limit = NULL, "
                  "per_learner_enrollment_limit = 100 WHERE uuid = %s", (policy_a.replace("-", ""),))
        p_policies = copy_policy(bench, policy_a, n)

        # The idle policy of another customer, for the isolation probe.
        other_subsidy, other_catalog = str(uuid.uuid4()), str(uuid.uuid4())
        idle_learners = list(range(990_001, 990_001 + 4 * args.pairs + 8))
        bench.control("POST", "/seed", json={
            "customers": [{"uuid": SECOND_CUSTOMER, "name": "Other Co", "slug": "other-co"}],
            "learners": [{"lms_user_id": uid, "email": f"idle{uid}@other.example", "username": f"idle{uid}",
                          "first_name": "Idle", "last_name": str(uid), "enterprise_customer_uuids": [SECOND_CUSTOMER]}
                         for uid in idle_learners],
            "catalogs": [{"uuid": other_catalog, "enterprise_customer_uuid": SECOND_CUSTOMER,
                          "content_keys": [content]}],
            "subsidies": [{**subsidy_doc, "uuid": other_subsidy, "enterprise_customer_uuid": SECOND_CUSTOMER}],
        })
        idle_policy = copy_policy(bench, policy_a, 1, enterprise_customer_uuid=SECOND_CUSTOMER.replace("-", ""),
                                  subsidy_uuid=other_subsidy.replace("-", ""),
                                  catalog_uuid=other_catalog.replace("-", ""))[0]
        idle_iter = iter(idle_learners)

        def probe():
            bench.side_requests += 1
            return bench.redeem(idle_policy, next(idle_iter), content, customer=SECOND_CUSTOMER)

        # Warm every worker and every thread, as a service that has been up a while is: each thread's database
        # connections, the pooled upstream connections, tokens and cached reads. A burst as wide as the thread pool
        # reaches them all; these learners redeem another course, so they stay fresh for the measured runs.
        spare_content = world["content"]["ordinary"][2]
        width = max(n, args.workers * args.threads)
        warmers = learners(width)
        for policy in (policy_a, policy_b):
            bench.run("warm-up", [(policy, uid, spare_content) for uid in warm])
        bench.run("warm-up", [(policy_a, uid, spare_content) for uid in warmers])
        bench.run("warm-up", [(p_policy, uid, world["content"]["ordinary"][1])
                              for p_policy, uid in zip(p_policies, warmers)])
        probe()
        bench.control("POST", "/latency", json={"delay_ms": args.latency_ms})
        say(f"Emulator base latency {args.latency_ms} ms.")

        # conn: TCP connections per warm redeem.
        bench.control("DELETE", "/stats")
        warm_redeems = 20
        for uid in learners(warm_redeems):
            bench.redeem(policy_a, uid, content)
        connections_per_redeem = bench.control("GET", "/stats")["connections_opened"] / warm_redeems

        unloaded = []
        for _ in range(3):
            status, ms, body = probe()
            assert status == 200, body
            unloaded.append(ms)
        unloaded_ms = statistics.median(unloaded)

        pairs, probes = [], []

        def probe_after_3s(started):
            time.sleep(max(0.0, 3.0 - (time.perf_counter() - started)))
            status, ms, body = probe()
            probes.append({"status": status, "ms": round(ms, 1), "body": body[:120]})

        for number in range(args.pairs):
            say(f"Pair {number + 1}: A ({n} learners, one policy) then P ({n} learners, {n} policies)...")
            a = bench.run(f"A{number + 1}_one_hot_policy", [(policy_a, uid, content) for uid in learners(n)],
                          during=probe_after_3s)
            p = bench.run(f"P{number + 1}_policy_each",
                          [(policy, uid, content) for policy, uid in zip(p_policies, learners(n))])
            pairs.append((a, p))
        txs_a = bench.transactions(subsidy_a)
        duplicate_a = duplicates(txs_a)
        efficiency = [round(a["redeems_per_s"] / p["redeems_per_s"], 3) if p["redeems_per_s"] else 0.0
                      for a, p in pairs]
        isolation = [round(pr["ms"] / unloaded_ms, 2) for pr in probes]

        # B: the policy's spend limit covers exactly K more redemptions.
        spent_b = spent_under(bench.transactions(subsidy_b), [policy_b])
        limit = spent_b + k * price + price // 2
        bench.sql("UPDATE subsidy_access_policy_subsidyaccesspolicy SET spend_limit = %s WHERE uuid = %s",
                  (limit, policy_b.replace("-", "")))
        say(f"Scenario B: {n} learners, spend limit {limit} covers {k} (spent before {spent_b})...")
        b = bench.run("B_limit_covers_k", [(policy_b, uid, content) for uid in learners(n)])
        all_b = bench.transactions(subsidy_b)
        spent_after = spent_under(all_b, [policy_b])
        b.update(k=k, spend_limit=limit, spent_total=spent_after, overspend=max(0, spent_after - limit),
                 duplicate_charges=duplicates(all_b, {policy_b}), exactly_k_succeeded=(b["ok_200"] == k))

        # C: one learner, many concurrent repeats.
        learner_c = learners(1)[0]
        say(f"Scenario C: {m} concurrent repeats by learner {learner_c}...")
        c = bench.run("C_one_learner_repeats", [(policy_a, learner_c, content_c)] * m)
        c_txs = [tx for tx in bench.transactions(subsidy_a)
                 if tx.get("lms_user_id") == learner_c and tx.get("state") in SPENT_STATES]
        c.update(transactions=len(c_txs))

        chaos = run_chaos(bench, stack, say, n=n, policy_source=policy_b, subsidy=subsidy_b, content=content,
                          price=price, learners=learners(n))
    finally:
        stack.stop()

    a_rows, p_rows = [a for a, _ in pairs], [p for _, p in pairs]
    rows = a_rows + p_rows + [b, c, chaos["row"]]
    cols = [("scenario", 22), ("requests", 8), ("ok_200", 6), ("status_202", 10), ("status_422", 10),
            ("status_429", 10), ("status_5xx", 10), ("errors", 6), ("p50_ms", 9), ("p95_ms", 9),
            ("redeems_per_s", 13), ("attempt_rows_added", 18), ("attempt_rows_open", 17)]
    print(f"\nRedeem load on the production-like stack (gunicorn gthread {args.workers} x {args.threads}, MariaDB, "
          f"Redis, emulator latency {args.latency_ms} ms)")
    print("  ".join(name.rjust(width) for name, width in cols))
    for row in rows:
        print("  ".join(str(row.get(name, "")).rjust(width) for name, width in cols))
    print(f"hot_policy_efficiency (A/P redeems per s, per pair): {efficiency}; median "
          f"{statistics.median(efficiency)} (goal >= 0.8)")
    print(f"isolation: unloaded {unloaded_ms:.0f} ms; during A: {[pr['ms'] for pr in probes]} ms; ratios "
          f"{isolation} (goal <= 2)")
    print(f"upstream TCP connections per warm redeem: {connections_per_redeem} (goal 0)")
    print(f"B: spend limit {b['spend_limit']}, spent {b['spent_total']}, overspend {b['overspend']}, "
          f"exactly K={k} succeeded: {b['exactly_k_succeeded']}")
    print(f"chaos: {json.dumps(chaos['figures'])}")
    for row in rows:
        if row.get("sample_non_200"):
            print(f"{row['scenario']} sample non-200 bodies: {json.dumps(row['sample_non_200'])[:500]}")

    figures = chaos["figures"]
    targets = {
        "hot_policy_efficiency_ge_0.8": statistics.median(efficiency) >= 0.8,
        "isolation_ratio_le_2": max(isolation) <= 2,
        "zero_connections_per_warm_redeem": connections_per_redeem == 0,
        "chaos_all_zero": all(figures[key] == 0 for key in ("overspend_cents", "duplicate_charges",
                                                            "unreconciled_attempts", "unmatched_transactions",
                                                            "5xx")),
        "zero_overspend_b": b["overspend"] == 0 and b["duplicate_charges"] == 0,
        "exactly_k": b["exactly_k_succeeded"],
        "one_transaction_c": c["transactions"] == 1,
        "zero_duplicates_a": duplicate_a == 0,
        "all_funded_succeeded": all(a["ok_200"] == n for a in a_rows + p_rows),
        "zero_lost_attempt_rows": all(r["lost_attempt_rows"] == 0 and r["attempt_rows_open"] == 0
                                      for r in a_rows + p_rows + [b, c]),
        "zero_5xx": all(r["status_5xx"] == 0 and r["errors"] == 0 for r in a_rows + p_rows + [b, c]),
    }
    print("Targets: " + ", ".join(f"{name}={'PASS' if ok else 'FAIL'}" for name, ok in targets.items()))
    summary = {
        "benchmark": "redeem_load", "workers": args.workers, "threads": args.threads,
        "latency_ms": args.latency_ms, "targets_met": all(targets.values()), "targets": targets,
        "hot_policy_efficiency": statistics.median(efficiency), "hot_policy_efficiency_pairs": efficiency,
        "A_redeems_per_s": [a["redeems_per_s"] for a in a_rows], "P_redeems_per_s": [p["redeems_per_s"] for p in p_rows],
        "A_p50_ms": [a["p50_ms"] for a in a_rows], "A_p95_ms": [a["p95_ms"] for a in a_rows],
        "isolation_ratio": max(isolation), "isolation_ratios": isolation, "isolation_unloaded_ms": round(unloaded_ms, 1),
        "isolation_loaded_ms": [pr["ms"] for pr in probes],
        "connections_per_warm_redeem": connections_per_redeem,
        "chaos": figures,
        "scenarios": {r["scenario"]: {key: value for key, value in r.items()
                                      if key not in ("scenario", "sample_non_200")} for r in rows},
    }
    print(json.dumps(summary, sort_keys=True))
    return 0 if all(targets.values()) else 1


def run_chaos(bench, stack, say, *, n, policy_source, subsidy, content, price, learners):
    """N learners on one tight policy with faults at the subsidy and a worker killed; then reconciliation."""
    policy = copy_policy(bench, policy_source, 1)[0]
    spent_before = spent_under(bench.transactions(subsidy), [policy])
    covered = n // 2
    limit = spent_before + covered * price + price // 2
    bench.sql("UPDATE subsidy_access_policy_subsidyaccesspolicy SET spend_limit = %s, per_learner_spend_limit = "
              "NULL, per_learner_enrollment_limit = NULL WHERE uuid = %s", (limit, policy.replace("-", "")))
    late_ms = READ_TIMEOUT_SECONDS * 1000 + 1500
    faults = [
        # Creates answered after the service's read timeout: they still write.
        {"service": "subsidy", "method": "POST", "path": CREATE, "status": None, "delay_ms": late_ms, "times": 12},
        # The ledger lock busy, in bursts.
        {"service": "subsidy", "method": "POST", "path": CREATE, "status": 429, "times": 25,
         "body": json.dumps({"detail": "Attempt to lock the Ledger failed, please try again."})},
        # Connections dropped before the create was processed, and after it was written.
        {"service": "subsidy", "method": "POST", "path": CREATE, "status": 0, "times": 8},
        {"service": "subsidy", "method": "POST", "path": CREATE, "status": 0, "times": 8, "phase": "after"},
        # Reads dropped too (the clients ask again).
        {"service": "subsidy", "method": "GET", "path": r"/can_redeem/", "status": 0, "times": 3},
    ]
    for fault in faults:
        bench.control("POST", "/faults", json=fault)
    killed = {}

    def kill_a_worker(started):
        time.sleep(1.0)
        pids = worker_pids(stack.gunicorn.pid)
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed["pid"] = pids[0]

    say(f"Chaos: {n} learners, limit covers {covered}, faults at the subsidy, one worker SIGKILLed...")
    row = bench.run("chaos", [(policy, uid, content) for uid in learners], during=kill_a_worker)
    bench.control("DELETE", "/faults")
    time.sleep(late_ms / 1000 + 1)  # every late create has landed: no run can still be sending
    summary = stack.reconcile("--takeover-after", "0")
    say(f"reconcile_redemptions: {json.dumps(summary)}")

    ledger = [tx for tx in bench.transactions(subsidy)
              if str(tx.get("subsidy_access_policy_uuid")) == policy and tx.get("state") in SPENT_STATES]
    spent = spent_under(ledger, [policy])
    policy_hex = policy.replace("-", "")
    open_rows = bench.sql("SELECT COUNT(*) FROM subsidy_access_policy_redemptionattempt WHERE policy_uuid = %s "
                          "AND outcome IN ('in_progress', 'uncertain')", (policy_hex,))[0][0]
    named = {str(row[0]).replace("-", "") for row in bench.sql(
        "SELECT transaction_uuid FROM subsidy_access_policy_redemptionattempt WHERE policy_uuid = %s "
        "AND outcome = 'redeemed' AND transaction_uuid IS NOT NULL", (policy_hex,))}
    unmatched = [tx["uuid"] for tx in ledger if tx["state"] == "committed" and tx["uuid"].replace("-", "") not in named]
    open_reservations = bench.sql("SELECT COUNT(*) FROM subsidy_access_policy_spendreservation WHERE policy_id = %s "
                                  "AND state IN ('reserved', 'sent', 'uncertain')", (policy_hex,))[0][0]
    figures = {
        "overspend_cents": max(0, spent - limit), "duplicate_charges": duplicates(ledger),
        "unreconciled_attempts": open_rows, "unmatched_transactions": len(unmatched),
        "5xx": row["status_5xx"], "open_reservations": open_reservations,
        "spend_limit": limit, "spent": spent, "committed_transactions": len(ledger),
        "responses": row["statuses"], "killed_worker": killed.get("pid"),
        "reconcile": summary,
    }
    return {"row": row, "figures": figures}


if __name__ == "__main__":
    sys.exit(main())
