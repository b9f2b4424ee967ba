"""A fork server for the tests' `infra-bench` processes.

Each CLI call of the tests is a real process running the real entry point, as `python -m infra_bench` runs
it. What a fresh interpreter pays first is importing torch, transformers, ONNX Runtime and diffusers: about
3-5 CPU-seconds a call, 150-odd calls a suite, on a 2-core VM a third of the suite's time. This server imports
them once per test worker, without running anything, and forks a child per call. The child takes the call's
folder, environment, stdin and output files, runs `infra_bench.cli.main` and exits with its code after
the exit handlers a fresh interpreter would run.

What a forked child cannot be: an interpreter started with other flags (`-W error`, `-X importtime`), or one
whose environment differs from the server's in variables that libraries read when imported. `run_cli` in
conftest.py starts a fresh interpreter for those (`python_args`, or an `env` that changes anything).

The protocol is one JSON line per call on stdin ({argv, cwd, env, stdout, stderr}); the server answers
{"pid": ...} when the child starts and {"returncode": ...} when it ends, one line each, on the descriptor
it was started with as stdout.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import random
import sys

PRELOAD = ("torch", "transformers", "onnxruntime", "onnx", "diffusers", "numpy", "pydantic", "yaml", "click",
           "infra_bench.cli")


def _child(call: dict) -> None:
    """Runs one CLI call in this forked process and never returns."""
    code: int = 1
    try:
        os.chdir(call["cwd"])
        os.environ.clear()
        os.environ.update(call["env"])
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                (1, call["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, call["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            opened = os.open(path, flags, 0o644)
            os.dup2(opened, fd)
            os.close(opened)
        random.seed()  # a fresh interpreter's random state, not the server's copy shared by every child
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        sys.argv = ["infra-bench", *call["argv"]]
        from infra_bench.cli import main

        try:
            main(call["argv"])
            code = 0
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001 (what an interpreter prints for any uncaught exception, and its code)
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed or broken stream: nothing left to save
                stream.flush()
        os._exit(code)


def serve() -> None:
    """Imports the heavy libraries, then forks one child per request line until stdin closes."""
    import importlib

    from infra_bench.cli import quiet_libraries

    quiet_libraries()  # what main() sets before a command imports anything (some libraries read it on import)
    for name in PRELOAD:
        # an extra this environment lacks, or one that fails to import beside these versions: the child
        # imports it (and fails) as a fresh interpreter would
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        from transformers import AutoConfig  # noqa: F401 (the lazy part of transformers every model build loads)

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        call = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            answers.close()
            _child(call)
        answers.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")


if __name__ == "__main__":
    serve()
