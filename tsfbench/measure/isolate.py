"""Run one configuration in a fresh child process, so its failure is a result, not a crash.

An out-of-memory error, a CUDA error (which can leave the CUDA context unusable) or a crash of
the child (a signal, the kernel's OOM killer) becomes the `status` of that configuration:
`ok`, `oom` or `error` with a message, and the sweep goes on with a clean process.

Each child is forked from a fork server (`multiprocessing`'s "forkserver") that has imported
torch and the target's module once and done nothing else: no CUDA, no thread pool, no tensor.
So every configuration still gets a process of its own (its own address space, allocator,
CUDA context, memory limit and peaks) but starts in milliseconds instead of importing torch
again (3 s of CPU each); it also ends without the interpreter's slow teardown.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from tsfbench.measure import cap
from tsfbench.measure.cap import Capped, cap_gpu
from tsfbench.store import Status

OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


@dataclass(frozen=True)
class Outcome:
    status: Status
    error: str | None = None
    value: Any = None
    note: str | None = None  # how the run differs from what was asked (a cap above the card)
    context: int | None = None  # GPU bytes outside the allocator that a memory cap left out
    # Where the time went, seen from the parent: `start` (asking for the child until it runs
    # the target), `run` (the target, `prepare` included), `teardown` (answer to exit)
    seconds: dict[str, float] = field(default_factory=dict, compare=False)


def classify(exc: BaseException) -> Outcome:
    """OOM on any device is `oom`; everything else is `error`, with a one-line message."""
    message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    oom = isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or any(
        text in str(exc).lower() for text in OOM_MESSAGES
    )
    return Outcome(Status.OOM if oom else Status.ERROR, message[:500])


def virtual_memory() -> int:
    """VmSize of this process in bytes: the address space already mapped."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def limit_memory(limit: int, device: torch.device, start: int | None = None) -> Capped:
    """Emulate a device with `limit` bytes; returns a note for the row and the GPU context.

    GPU: the caching allocator's per-process fraction, less this process's own memory outside
    the allocator (`cap.cap_gpu`; `start` is `cap.start`'s baseline, taken before the warm-up).
    CPU: an address-space limit of what is mapped now (libraries, thread stacks, started first
    by a small matmul) plus `limit`, so `limit` is the room left for the step, like a GPU's
    free memory.
    """
    if device.type == "cuda":
        return cap_gpu(limit, device, start)
    torch.ones(64, 64) @ torch.ones(64, 64)  # start the intra-op thread pool before the cap
    ceiling = virtual_memory() + limit
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, resource.getrlimit(resource.RLIMIT_AS)[1]))
    return Capped()


def _child(
    conn: Connection,
    target: Callable[..., Any],
    args: tuple[Any, ...],
    memory_limit: int | None,
    device: str,
    prepare: tuple[Callable[..., Any], tuple[Any, ...]] | None,
    context: tuple[dict[str, str], str] | None = None,
) -> None:
    entered = time.monotonic()
    # Ctrl-C is the parent's to handle (it stops this child); a fork server started outside
    # `sigint_ignored` would otherwise hand its children the default handler.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if context is not None:  # a forked child has the fork server's, not the parent's
        os.environ.clear()
        os.environ.update(context[0])
        os.chdir(context[1])
    capped = Capped()
    try:
        # the GPU cap's baseline: this process's context is created here, before the warm-up
        baseline = cap.start(torch.device(device)) if memory_limit is not None else None
        if prepare is not None:  # lazy imports, thread pools, arenas: mapped before the cap
            prepare[0](*prepare[1])
        if memory_limit is not None:
            capped = limit_memory(memory_limit, torch.device(device), baseline)
        outcome = Outcome(Status.OK, None, target(*args), capped.note, capped.context)
    except BaseException as exc:  # everything the child raises is the configuration's outcome
        outcome = replace(classify(exc), note=capped.note, context=capped.context)
    times = (entered, time.monotonic())
    try:
        try:
            conn.send((outcome, times))
        except (BrokenPipeError, EOFError):
            return  # the parent is gone (interrupted): nobody to answer
        except Exception as exc:  # an unpicklable value
            conn.send((classify(exc), times))
    finally:
        conn.close()


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Processes started inside inherit an ignored SIGINT, which a spawned Python keeps, so
    Ctrl-C reaches only this process, and it stops them: no child prints a traceback from
    the middle of its imports or of a send to a closed pipe."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; Ctrl-C is delivered there anyway
        return
    # A Ctrl-C during these few milliseconds is lost (masking cannot keep it: another thread
    # of this process would take it while ignored); pressing again works.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """A Ctrl-C that lands while a child is being started is raised once `process.start()` has
    returned, so the caller holds the child and stops it; not lost. For children of the fork
    server, which ignore Ctrl-C already (the server was started inside `sigint_ignored`): a
    forked child runs its target before `start()` returns here, so an ignored Ctrl-C in that
    window was lost while the child went on (a child waiting for input hung the run)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def starting(method: str) -> contextlib.AbstractContextManager[None]:
    """Around starting a child: a spawned one inherits this process's ignored Ctrl-C
    (`sigint_ignored`); the fork server's ignore it already, and a Ctrl-C meanwhile is
    deferred (`sigint_deferred`)."""
    return sigint_deferred() if method == "forkserver" else sigint_ignored()


def start_method() -> str:
    """ "forkserver" where the platform has it (Linux, macOS), else "spawn"."""
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


@contextlib.contextmanager
def bare_main(objects: object) -> Iterator[bool]:
    """Start processes without this program's `__main__` where `objects` do not need it.

    A child started from a script (the `tsfbench` command is one) runs that script again as
    `__mp_main__` before its target, and so does every process *it* starts: the memory monitor
    imported typer, rich and torch for 3 to 6 s before its first sample. Yields whether the
    main module was hidden (False when `objects` refer to it: they need it in the child).
    """
    main = sys.modules["__main__"]
    bare = types.ModuleType("__main__")
    sys.modules["__main__"] = bare
    try:
        pickle.dumps(objects)
    except Exception:  # something of `__main__` (or that only multiprocessing can pickle)
        sys.modules["__main__"] = main
        yield False
        return
    try:
        yield True
    finally:
        sys.modules["__main__"] = main


def start_server(preload: Sequence[str] = ()) -> None:
    """Start the fork server now (if not yet running) with torch and `preload` imported.

    It is started once per process, on first use, and imports nothing afterwards, so only
    the first call's `preload` counts. Starting it early lets its imports overlap other work.
    """
    modules = [name for name in ("torch", *preload) if name != "__main__"]
    forkserver.set_forkserver_preload(list(dict.fromkeys(modules)))
    with sigint_ignored(), bare_main(None):  # the server and its children ignore Ctrl-C
        forkserver.ensure_running()


def run_isolated(
    target: Callable[..., Any],
    *args: Any,
    memory_limit: int | None = None,
    device: str = "cpu",
    timeout: float | None = None,
    prepare: tuple[Callable[..., Any], tuple[Any, ...]] | None = None,
    method: str | None = None,
    preload: Sequence[str] = (),
) -> Outcome:
    """`target(*args)` in a child process of its own; its value, or why there is none.

    `target` and `args` must pickle (a module-level function). A child that dies without an
    answer is an `error` naming the signal; one still running after `timeout` s is killed and
    is a `timeout`, a final result like `oom` (a resumed run does not try it again).
    `prepare` = (function, args) runs in the child before the memory limit is set. `method`
    is the start method, `start_method()` by default ("spawn" starts a fresh interpreter);
    `preload` names modules the fork server imports when it starts, besides torch and the
    target's module (those a child would otherwise import lazily, each time).
    """
    began = time.monotonic()
    method = method or start_method()
    context = multiprocessing.get_context(method)  # never "fork": no inherited CUDA state
    inherited = None
    if method == "forkserver":
        start_server([getattr(target, "__module__", None) or "torch", *preload])
        inherited = (dict(os.environ), os.getcwd())
    ours, theirs = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(theirs, target, args, memory_limit, device, prepare, inherited)
    )
    try:
        with starting(method), bare_main((target, args, prepare)):
            process.start()
        theirs.close()
        if ours.poll(timeout):
            try:
                outcome, (entered, finished) = ours.recv()
            except EOFError:
                pass  # the child died before answering
            else:
                answered = time.monotonic()
                process.join(timeout=10)  # it exits right after answering
                seconds = {
                    "start": entered - began,
                    "run": finished - entered,
                    "teardown": time.monotonic() - answered,
                }
                return replace(outcome, seconds=seconds)
        else:
            process.kill()
            process.join()
            return Outcome(Status.TIMEOUT, f"timed out after {timeout:g} s")  # kept: not retried
        process.join()
        return Outcome(Status.ERROR, died(process.exitcode))
    except BaseException:  # Ctrl-C: the child ignores it, so it is stopped here
        if process.pid is not None:
            process.kill()
        raise
    finally:
        ours.close()
        theirs.close()
        if process.pid is not None:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()


def died(exitcode: int | None) -> str:
    """Why a child gave no answer; SIGKILL is usually the kernel's OOM killer."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (the kernel's OOM killer?)" if name == "SIGKILL" else ""
        return f"child killed by {name}{hint}"
    return f"child exited with code {exitcode} without a result"
