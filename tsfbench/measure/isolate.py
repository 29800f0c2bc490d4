"""Run one configuration in a fresh child process, so its failure is a result, not a crash.

An out-of-memory error, a CUDA error (which can leave the CUDA context unusable) or a crash of
the child (a signal, the kernel's OOM killer) becomes the `status` of that configuration:
`ok`, `oom` or `error` with a message, and the sweep goes on with a clean process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


@dataclass(frozen=True)
class Outcome:
    status: str  # ok | oom | error
    error: str | None = None
    value: Any = None


def classify(exc: BaseException) -> Outcome:
    """OOM on any device is `oom`; everything else is `error`, with a one-line message."""
    message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    oom = isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or any(
        text in str(exc).lower() for text in OOM_MESSAGES
    )
    return Outcome("oom" if oom else "error", message[:500])


def virtual_memory() -> int:
    """VmSize of this process in bytes: the address space already mapped."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def limit_memory(limit: int, device: torch.device) -> None:
    """Emulate a device with `limit` bytes.

    GPU: the caching allocator's per-process fraction, less the CUDA context's footprint: the
    fraction caps the allocator only, and the context (and anything else held outside torch's
    allocator) takes room that a real card of `limit` bytes would not have either. Called after
    a warm-up step, whose cached blocks are released first so that `reserved` is what torch
    still holds (the cuBLAS workspaces, which stay inside the cap). CPU: an address-space limit
    of what is mapped now (libraries, thread stacks, started first by a small matmul) plus
    `limit`, so `limit` is the room left for the step, like a GPU's free memory.
    """
    if device.type == "cuda":
        # the fraction needs a device index, which torch.device("cuda") does not carry
        index = torch.cuda.current_device() if device.index is None else device.index
        torch.cuda.empty_cache()
        free, total = torch.cuda.mem_get_info(index)
        context = max(0, total - free - torch.cuda.memory_reserved(index))
        fraction = min(1.0, max(0.0, (limit - context) / total))
        torch.cuda.set_per_process_memory_fraction(fraction, index)
        return
    torch.ones(64, 64) @ torch.ones(64, 64)  # start the intra-op thread pool before the cap
    cap = virtual_memory() + limit
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))


def _child(
    conn: Connection,
    target: Callable[..., Any],
    args: tuple[Any, ...],
    memory_limit: int | None,
    device: str,
    prepare: tuple[Callable[..., Any], tuple[Any, ...]] | None,
) -> None:
    try:
        if prepare is not None:  # lazy imports, thread pools, arenas: mapped before the cap
            prepare[0](*prepare[1])
        if memory_limit is not None:
            limit_memory(memory_limit, torch.device(device))
        outcome = Outcome("ok", None, target(*args))
    except BaseException as exc:  # everything the child raises is the configuration's outcome
        outcome = classify(exc)
    try:
        try:
            conn.send(outcome)
        except (BrokenPipeError, EOFError):
            return  # the parent is gone (interrupted): nobody to answer
        except Exception as exc:  # an unpicklable value
            conn.send(classify(exc))
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


def run_isolated(
    target: Callable[..., Any],
    *args: Any,
    memory_limit: int | None = None,
    device: str = "cpu",
    timeout: float | None = None,
    prepare: tuple[Callable[..., Any], tuple[Any, ...]] | None = None,
) -> Outcome:
    """`target(*args)` in a spawned child; its value, or why there is none.

    `target` and `args` must pickle (a module-level function). A child that dies without an
    answer is an `error` naming the signal; one still running after `timeout` s is killed.
    `prepare` = (function, args) runs in the child before the memory limit is set.
    """
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited CUDA state
    ours, theirs = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(theirs, target, args, memory_limit, device, prepare)
    )
    with sigint_ignored():
        process.start()
    theirs.close()
    try:
        if ours.poll(timeout):
            try:
                return ours.recv()
            except EOFError:
                pass  # the child died before answering
        else:
            process.kill()
            process.join()
            return Outcome("error", f"timed out after {timeout:g} s")
        process.join()
        return Outcome("error", died(process.exitcode))
    except BaseException:  # Ctrl-C: the child ignores it, so it is stopped here
        process.kill()
        raise
    finally:
        ours.close()
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
