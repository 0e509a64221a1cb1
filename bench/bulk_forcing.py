"""
Bulk forcing of N rows (default 1,000) against the live emulator, through the admin's own views and a real Celery
worker process (decision record 0019):

  upload_check  POST the CSV to the upload page: read, every row checked upstream, the preview rendered;
  save          POST the preview's "Save": checked again, N waiting records written in one transaction;
  enqueue       POST the confirmed "Force redemption" action for the N records: the request writes the job and
                sends it to the broker (it must stay short whatever N is);
  forcing       a Celery worker (run_demo's command line, filesystem broker) forcing the job until it finishes.

    .venv/bin/python bench/bulk_forcing.py [--rows 1000]

Prints a table and, on its last line, the figures as one JSON object.
"""
import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import ROOT, start


def main():
    logging.getLogger("edx_rest_framework_extensions").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows in the CSV (at most the upload cap)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the worker to finish")
    args = parser.parse_args()
    broker = Path(tempfile.mkdtemp(prefix="ea-bench-broker-"))
    os.environ["CELERY_BROKER_DIR"] = str(broker)  # before Django reads the settings
    emulator, emulator_cm, world = start(learners=args.rows)
    try:
        return measure(args, emulator, world, broker)
    finally:
        emulator_cm.__exit__(None, None, None)


def measure(args, emulator, world, broker):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.db.models import Count
    from django.test import Client

    from enterprise_access.apps.subsidy_access_policy.models import BulkForcingJob, ForcedPolicyRedemption
    from enterprise_access.devtools import demo
    from enterprise_access.devtools.management.commands.run_demo import worker_command
    from enterprise_access.devtools.testing import build_world_policy

    # The cheapest run for every learner, on a policy whose limit the N redemptions fit in.
    run = min(world["content"]["ordinary"], key=lambda key: demo.PRICES[key])
    policy = build_world_policy("per_learner_enrollment", display_name="Bench bulk credit",
                                spend_limit=demo.STARTING_BALANCE_CENTS)
    learners = [lr["lms_user_id"] for lr in world["learners"] if lr["lms_user_id"] >= demo.EXTRA_LEARNER_FIRST_ID]
    learners = learners[:args.rows]
    text = "lms_user_id,course_run_key\n" + "".join(f"{uid},{run}\n" for uid in learners)
    admin = get_user_model().objects.create_superuser("bench-admin", "bench-admin@example.org", "x")
    client = Client()
    client.force_login(admin)

    started = time.perf_counter()
    preview = client.post("/admin/subsidy_access_policy/bulkforcingjob/upload/", {
        "policy": str(policy.pk), "file": SimpleUploadedFile("bench.csv", text.encode())})
    upload_check = time.perf_counter() - started
    found = re.search(r'name="payload" value="([^"]+)"', preview.content.decode())
    payload = found.group(1) if preview.status_code == 200 and found else None
    if not payload:
        raise SystemExit(f"The upload was not valid ({preview.status_code}): {preview.content[:2000]!r}")

    started = time.perf_counter()
    saved = client.post("/admin/subsidy_access_policy/bulkforcingjob/upload/",
                        {"_save": "1", "policy": str(policy.pk), "payload": payload})
    save = time.perf_counter() - started
    records = list(ForcedPolicyRedemption.objects.filter(subsidy_access_policy=policy).values_list("pk", flat=True))
    assert saved.status_code == 200 and len(records) == len(learners), (saved.status_code, len(records))

    call_command("createcachetable", "django_cache", verbosity=0)  # the worker runs the local settings
    database = settings.DATABASES["default"]["NAME"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "enterprise_access.settings.local", "LOCAL_SQLITE_PATH": database,
           "EMULATOR_URL": emulator.url, "CELERY_BROKER_DIR": str(broker)}
    log = open(Path(database).parent / "celery.log", "wb")  # noqa: SIM115 (the worker's life)
    worker = subprocess.Popen(worker_command(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        started = time.perf_counter()
        response = client.post("/admin/subsidy_access_policy/forcedpolicyredemption/", {
            "action": "force_redemption_action", "post": "yes", "index": "0",
            "_selected_action": [str(pk) for pk in records]})
        enqueue = time.perf_counter() - started
        job = BulkForcingJob.objects.get()
        assert response.status_code == 302, response.status_code
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.finished_at is not None:
                break
            if worker.poll() is not None:
                raise SystemExit(f"The worker exited ({worker.returncode}); see {log.name}")
            time.sleep(0.2)
        if job.finished_at is None:
            raise SystemExit(f"The job did not finish within {args.timeout:g} s")
        forcing = (job.finished_at - job.created).total_seconds()
        results = dict(job.rows.values_list("result").annotate(n=Count("pk")))
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        log.close()

    figures = {
        "rows": len(learners),
        "upload_check_s": round(upload_check, 3),
        "save_s": round(save, 3),
        "enqueue_request_s": round(enqueue, 3),
        "background_forcing_s": round(forcing, 3),
        "rows_per_s": round(len(learners) / forcing, 1) if forcing else None,
        "results": results,
        "emulator_transactions": sum(1 for tx in emulator.control.transactions(str(policy.subsidy_uuid))
                                     if tx["lms_user_id"] in set(learners)),
    }
    print(f"{'step':<22}{'seconds':>10}")
    for step in ("upload_check_s", "save_s", "enqueue_request_s", "background_forcing_s"):
        print(f"{step[:-2]:<22}{figures[step]:>10.3f}")
    print(f"{'rows/s (forcing)':<22}{figures['rows_per_s']:>10}")
    print(f"results: {results}; transactions in the emulator: {figures['emulator_transactions']}")
    print(json.dumps(figures))
    return 0 if results == {"redeemed": len(learners)} else 1


if __name__ == "__main__":
    sys.exit(main())
