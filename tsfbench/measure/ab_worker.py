"""One side of `tsfbench ab`: a process that builds one workload and runs one step per request.

Started by `tsfbench.ab` as `python -c BOOT THIS_FILE TREE`: the bootstrap puts TREE first on
`sys.path` and runs this file by path, so `import tsfbench` below is that tree's package (a
checkout before or after a change) while this protocol code is always the running one's. It
therefore imports only APIs that older checkouts share (`RunConfig`, `ProbeSettings`,
`build_workload`) and times steps itself with `perf_counter_ns` (CUDA: synchronised), never a
newer helper.

Protocol, one JSON object a line: the first line in is the setup (`config`, `probe`,
`overrides`, `threads`, `device`); the worker answers `{"ready": ...}` once its step is built;
then each `step` line in runs one step and answers `{"ms": ...}`; `quit` (or end of input) ends
it. A failure answers `{"error": "one line"}` and exits 1. Stray prints of the code under test
go to stderr, so they cannot corrupt the protocol on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO


def _protocol_stream() -> TextIO:
    """The original stdout, kept for the protocol; fd 1 and sys.stdout now lead to stderr."""
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def _send(stream: TextIO, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def _error_text(error: BaseException) -> str:
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0] if first else ''}".rstrip(": ")


def serve(inbox: TextIO, outbox: TextIO) -> int:
    """Answer the coordinator until `quit`; returns the exit code."""
    try:
        setup = json.loads(inbox.readline())
        import torch

        if setup.get("threads"):
            torch.set_num_threads(int(setup["threads"]))
        import tsfbench
        from tsfbench.config import ProbeSettings, RunConfig
        from tsfbench.measure.workload import build_workload

        config = RunConfig(**setup["config"])
        probe = ProbeSettings(**setup["probe"])
        workload = build_workload(config, probe, setup["device"], setup.get("overrides") or {})
        cuda = torch.device(setup["device"]).type == "cuda"
        _send(
            outbox,
            {
                "ready": True,
                "threads": torch.get_num_threads(),
                "tsfbench": str(tsfbench.__file__),
                "torch": torch.__version__,
                "pid": os.getpid(),
                # NVML finds the device by it: the coordinator's contention reading
                "gpu_uuid": str(torch.cuda.get_device_properties(setup["device"]).uuid)
                if cuda
                else None,
            },
        )
        for line in inbox:
            request = line.strip()
            if request == "quit" or not request:
                break
            if cuda:
                torch.cuda.synchronize()
            begin = time.perf_counter_ns()
            workload.step()
            if cuda:  # the step's queued work is part of the step
                torch.cuda.synchronize()
            _send(outbox, {"ms": (time.perf_counter_ns() - begin) / 1e6})
    except Exception as error:  # any failure is the coordinator's one-line row
        _send(outbox, {"error": _error_text(error)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.stdin, _protocol_stream()))
