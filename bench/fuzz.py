"""
The long schemathesis run: the CI fuzz suite (enterprise_access/apps/api/tests/test_fuzz_schema.py) with many
more examples per operation, a fresh seed each run unless given, and a table of the status codes seen.

    .venv/bin/python bench/fuzz.py [--examples 500] [--seed N] [-- extra pytest args]

Every operation of the redeem, can-redeem, credits-available, policy and attempt endpoints, valid and invalid
inputs, as an operator and as a learner, against the live app and the upstream emulator; and (mode ``edge``,
4 x examples) the bad input schemathesis does not generate: tampered cursors, date-times at the edges of UTC,
bodies around the 64 KB limit, JSON nested around the 32-level limit (decision 0014). Fails (exit 1) on a
5xx or any response that does not conform to /api/schema/. A failure prints the request as a curl command; replay
it with the printed seed: ``FUZZ_SEED=<seed> FUZZ_MAX_EXAMPLES=<n> .venv/bin/pytest <the test id>``.
The last line is one JSON object of the figures.
"""
import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "enterprise_access/apps/api/tests/test_fuzz_schema.py"


class StatusReport:
    """pytest plugin: collect the fuzz module's status counters and the outcome of each test."""

    def __init__(self):
        self.failed = []
        self.passed = 0

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.failed):
            if report.failed:
                self.failed.append(report.nodeid)
            elif report.when == "call" and report.passed:
                self.passed += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "500")),
                        help="examples per operation, input mode and caller (default 500)")
    parser.add_argument("--seed", type=int, default=None, help="default: a fresh random seed, printed")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    os.environ["FUZZ_MAX_EXAMPLES"] = str(args.examples)
    os.environ["FUZZ_SEED"] = str(seed)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    print(f"fuzzing with {args.examples} examples per operation/mode/caller, seed {seed}", flush=True)

    import pytest

    report = StatusReport()
    started = time.monotonic()
    code = pytest.main([TEST, "-q", "-p", "no:cacheprovider", *args.pytest_args], plugins=[report])
    elapsed = time.monotonic() - started

    from enterprise_access.apps.api.tests import test_fuzz_schema as fuzz

    rows = sorted(fuzz.STATUSES.items())
    print()
    print(f"{'operation':<84} {'caller':<9} {'mode':<9} {'requests':>8}  statuses")
    total = 0
    server_errors = 0
    for (method, path, caller, mode), counts in rows:
        n = sum(counts.values())
        total += n
        server_errors += sum(v for k, v in counts.items() if k >= 500)
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(counts.items()))
        print(f"{method + ' ' + path:<84} {caller:<9} {mode:<9} {n:>8}  {statuses}")
    print(f"\n{total} requests in {elapsed:.0f} s; {len(report.failed)} failing tests; seed {seed}")
    for nodeid in report.failed:
        print(f"  FAILED {nodeid}")
    print(json.dumps({"seed": seed, "examples": args.examples, "requests": total, "server_errors": server_errors,
                      "failed_tests": report.failed, "passed_tests": report.passed,
                      "seconds": round(elapsed, 1)}))
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
