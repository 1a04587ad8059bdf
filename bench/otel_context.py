"""Cost per ``log_model_call`` of filling trace_id/span_id from OpenTelemetry.

    python bench/otel_context.py [--calls 20000] [--rounds 7] [--baseline-src DIR]

Each case runs in its own interpreter (whether ``opentelemetry`` is imported
is the point), rounds alternating between cases so that machine noise hits
all alike; events go to a transport that keeps nothing (the SDK's own cost).
The call is the original sketch's (the fast path's common call).

Cases:
- ``no_otel``: the program never imports OpenTelemetry (the check is one
  ``sys.modules`` lookup);
- ``otel_no_span``: imported, no span current (the lookup runs, finds none);
- ``otel_span``: inside an SDK span (ids read and sent);
- ``ids_given``: the same ids passed as arguments, no span (the event with
  ids, without the lookup: its difference to ``otel_span`` is the lookup);
- ``baseline_no_otel``: with ``--baseline-src``, the ``src`` of a version
  without the check (e.g. ``git archive main src | tar -x -C /tmp/base``),
  as ``no_otel``.
Prints one JSON object: median ns per call per case (the median of rounds'
medians) and ratios to ``no_otel``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Dict, List

ROUND = r"""
import sys, time
{setup}
from vdt_ai import VDTClient
from vdt_ai.codec import Record
from vdt_ai.transport import Transport

class Nothing(Transport):
    def send(self, record, counters):
        return None
    def flush(self, timeout=None):
        return 0
    def close(self, timeout=None):
        pass

client = VDTClient(transport=Nothing(), handle_sigterm=False)
log = client.log_model_call
ids = {ids}
clock = time.perf_counter_ns
times = []
{enter}
for _ in range({calls}):
    start = clock()
    log("recommendation_model", {{"user_id": 123}}, {{"items": [1, 2, 3]}}, 45, **ids)
    times.append(clock() - start)
times.sort()
print(times[len(times) // 2])
"""

SPAN = (
    "from opentelemetry.sdk.trace import TracerProvider\n"
    "span_cm = TracerProvider().get_tracer('b').start_as_current_span('s')\n"
)
CASES: Dict[str, Dict[str, str]] = {
    "no_otel": {"setup": "", "ids": "{}", "enter": ""},
    "otel_no_span": {"setup": "import opentelemetry.trace", "ids": "{}", "enter": ""},
    "otel_span": {"setup": SPAN, "ids": "{}", "enter": "span_cm.__enter__()"},
    "ids_given": {
        "setup": "",
        "ids": "{'trace_id': '0af7651916cd43dd8448eb211c80319c', "
        "'span_id': '00f067aa0ba902b7'}",
        "enter": "",
    },
}


def one_round(case: str, calls: int, src: str) -> int:
    code = ROUND.format(calls=calls, **CASES[case.replace("baseline_", "")])
    env = dict(os.environ, PYTHONPATH=src)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return int(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline-src", default=None)
    args = parser.parse_args()
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    sources = {case: here for case in CASES}
    if args.baseline_src:
        sources["baseline_no_otel"] = args.baseline_src
    medians: Dict[str, List[int]] = {case: [] for case in sources}
    for _ in range(args.rounds):
        for case, src in sources.items():
            medians[case].append(one_round(case, args.calls, src))
    result: Dict[str, object] = {
        f"{case}_ns": statistics.median(values) for case, values in medians.items()
    }
    base = statistics.median(medians["no_otel"])
    for case, values in medians.items():
        result[f"{case}_over_no_otel"] = round(statistics.median(values) / base, 3)
    result["calls_per_round"] = args.calls
    result["rounds"] = args.rounds
    result["python"] = sys.version.split()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
