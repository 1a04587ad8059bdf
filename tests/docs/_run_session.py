"""Runs one session of documentation blocks (a JSON list on stdin) in order.

Python blocks share one namespace, as in a REPL or a notebook; a block with a
top-level ``await`` or ``async with`` runs the way Jupyter and
``python -m asyncio`` run it. Bash blocks run with ``bash -euo pipefail`` in
the same folder and environment. Any failure exits non-zero, naming the block.
"""

import ast
import asyncio
import inspect
import json
import os
import subprocess
import sys
import traceback
from typing import Any, Dict


def main() -> int:
    blocks = json.load(sys.stdin)
    namespace: Dict[str, Any] = {"__name__": "__main__"}
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    for block in blocks:
        print(f"--- {block['where']} ({block['lang']})", flush=True)
        if block["lang"] == "bash":
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block["code"]], env=env
            )
            if done.returncode != 0:
                print(f"FAILED {block['where']}: exit {done.returncode}", flush=True)
                return 1
            continue
        try:
            code = compile(
                "\n" * (block["line"] - 1) + block["code"],  # tracebacks: file lines
                block["path"],
                "exec",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            )
            if code.co_flags & inspect.CO_COROUTINE:
                asyncio.run(eval(code, namespace))
            else:
                exec(code, namespace)
        except BaseException:  # SystemExit included: a block must not exit
            traceback.print_exc()
            print(f"FAILED {block['where']}", flush=True)
            return 1
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
