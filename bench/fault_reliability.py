"""How reliable the fault tests are: each of ``tests/e2e/test_stack_faults.py`` (killed
workers, dropped connections, RabbitMQ restarted, PostgreSQL restarted) run N times in a
row, each time a whole stack on the machine's real RabbitMQ, PostgreSQL and SeaweedFS.
Prints, per test, how many runs passed, their median and slowest wall time, and the
first failure's last lines; the goal is N/N for every test. Runs alone: the tests
restart the shared broker and database.

    python bench/fault_reliability.py [--runs 20] [--only broker_restart ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ROOT / "tests" / "e2e" / "test_stack_faults.py"


def fault_tests() -> list[str]:
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", str(FAULTS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    return [line.split("::", 1)[1] for line in listed.splitlines() if "::" in line]


def run_once(test: str) -> tuple[bool, float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", f"{FAULTS}::{test}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
    return done.returncode == 0, time.perf_counter() - started, tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", nargs="*", default=[], help="tests whose names contain these")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    tests = [t for t in fault_tests() if not args.only or any(o in t for o in args.only)]
    report: dict[str, object] = {"runs": args.runs}
    for test in tests:
        passed, times, first_failure = 0, [], ""
        for _ in range(args.runs):
            ok, seconds, tail = run_once(test)
            passed += ok
            times.append(seconds)
            first_failure = first_failure or ("" if ok else tail)
        report[test] = {
            "passed": f"{passed}/{args.runs}",
            "median_s": round(statistics.median(times), 1),
            "slowest_s": round(max(times), 1),
            **({"first_failure": first_failure} if first_failure else {}),
        }
        sys.stdout.write(json.dumps({test: report[test]}) + "\n")
        sys.stdout.flush()
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
