"""Native libraries' own log lines kept off the terminal.

Some C++ code writes straight to file descriptor 2, where no Python setting reaches: decord's
`LOG(ERROR)` lines when it cannot open a video (`data/decoders.py`), and kineto's lines when
torch's profiler starts and stops (`measure/profile.py`: "USDT: ... profiler_start", and
"ERROR: ... gpuGetDeviceCount failed" on a machine without a GPU; `KINETO_LOG_LEVEL` quiets
the second, not the first). Around such calls, and only those, fd 2 points at /dev/null.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 on /dev/null for the duration. Per process: a loader worker's redirect
    leaves the terminal of the main process alone. Keep it short: Python's own stderr (a
    warning, a progress bar's refresh) written inside is lost too."""
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stderr.flush()  # what Python buffered goes out before the redirect
    saved = os.dup(2)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 2)
        yield
    finally:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            sys.stderr.flush()  # what was written inside goes to /dev/null, not out later
        os.dup2(saved, 2)
        os.close(saved)
        os.close(sink)
