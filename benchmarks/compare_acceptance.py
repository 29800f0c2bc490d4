"""`tsfbench compare`'s acceptance: no false alarm between two runs, an injected slowdown caught.

(a) The latency suite (`suites/latency.toml`: the quick suite's latency tasks) is measured into
two new stores back to back by the same code, and `tsfbench compare` between them must find no
`slower` row (exit 0), `--repeats` times; the widths of the ratio intervals (and of each row's
median interval, where the rows keep one) are printed. (b) The same tasks measured with one
intra-op thread (`OMP_NUM_THREADS=1` in the environment of that `tsfbench run`: its fork server,
and so every child, starts with it) against the first store: every row must be `slower` with
exit code 1, and the reverse comparison every row `faster` with exit code 0.

Each measurement is `tsfbench run` in a subprocess, each comparison `tsfbench compare --json`:
the commands a user runs. Ratios come from rows measured minutes apart on one machine: run it on
a quiet one. `--iterations auto` where the suite accepts it (the stats change), else a fixed
count; `--quick` shrinks the models (one block, 32 px) to check the script's logic in a minute.

    python benchmarks/compare_acceptance.py [--repeats 3] [--iterations auto|N] [--max-time S]
        [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tsfbench.errors import ConfigError
from tsfbench.store import Store
from tsfbench.suite import load_suite

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SUITE = Path(__file__).resolve().parents[1] / "suites" / "latency.toml"
JUDGED = ("same", "slower", "faster")  # verdicts from an interval
FIXED = 10  # timed steps where `iterations = "auto"` is not known to the suite loader
# --quick: the same suite's shape on a one-block model at 4 x 32 (two schemes; a 3D CNN
# cannot shrink), enough steps for an interval
QUICK_GRID = {
    "measure": ["latency"],
    "model": "base",
    "attention": ["divided", "space"],
    "frames": 4,
    "size": 32,
    "overrides": {"depth": 1, "dim": 64, "heads": 4},
    "warmup": 1,
}


def toml_value(value: Any) -> str:
    """A TOML value of a suite grid (strings, numbers, booleans, lists, inline tables)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # a JSON string, number or boolean is TOML's too


def write_suite(
    folder: Path, iterations: str | int, quick: bool, max_time: float | None = None
) -> tuple[Path, str | int]:
    """The latency suite with `iterations` (and `max_time` where auto), in `folder`; falls back
    to a fixed count where the suite loader refuses "auto". Returns the file and the iterations
    it has."""
    document = tomllib.loads(SUITE.read_text())
    grids = [dict(QUICK_GRID)] if quick else document["grid"]
    path = folder / "latency.toml"
    for tried in dict.fromkeys([iterations, FIXED]):
        lines = [f"name = {toml_value('latency-acceptance')}"]
        for grid in grids:
            lines += ["", "[[grid]]"]
            grid = {**grid, "iterations": tried}
            if tried == "auto" and max_time is not None:
                grid["max_time"] = max_time
            lines += [f"{key} = {toml_value(v)}" for key, v in grid.items()]
        path.write_text("\n".join(lines) + "\n")
        try:
            load_suite(path, folder)
        except ConfigError as error:
            print(f"iterations = {tried!r} refused ({error}); a fixed count instead")
            continue
        return path, tried
    raise SystemExit("the latency suite does not load")


def thread_env(threads: int | None) -> dict[str, str]:
    """This environment, with the intra-op thread count pinned when `threads` is given."""
    env = dict(os.environ)
    if threads is not None:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return env


def torch_threads(threads: int | None) -> int:
    """How many intra-op threads torch takes in that environment."""
    code = "import torch; print(torch.get_num_threads())"
    done = subprocess.run([sys.executable, "-c", code], env=thread_env(threads),
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def measure(suite: Path, store: Path, threads: int | None = None) -> float:
    """`tsfbench run SUITE --store STORE` in a subprocess; its wall seconds."""
    began = time.perf_counter()
    command = [sys.executable, "-m", "tsfbench", "run", str(suite), "--store", str(store)]
    subprocess.run(command, env=thread_env(threads), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def compare(base: Path, new: Path, *options: str) -> tuple[int, dict[str, Any]]:
    """`tsfbench compare BASE NEW --json [options]`: (exit code, its JSON)."""
    command = [sys.executable, "-m", "tsfbench", "compare", str(base), str(new), "--json"]
    command += list(options)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"tsfbench compare failed: {done.stderr.strip()}")
    return done.returncode, json.loads(done.stdout)


def runtime_pairs(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [pair for pair in result["pairs"] if pair["measurement"] == "runtime"]


def verdicts(result: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for pair in runtime_pairs(result):
        counts[pair["verdict"]] = counts.get(pair["verdict"], 0) + 1
    return ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) or "no rows"


def interval_widths(result: dict[str, Any]) -> list[float]:
    """The width of each runtime pair's ratio interval (high - low)."""
    return [
        pair["ratio_high"] - pair["ratio_low"]
        for pair in runtime_pairs(result)
        if pair.get("ratio_low") is not None
    ]


def machine_ratios(result: dict[str, Any]) -> list[float]:
    """The machine-speed canary's new / base of each runtime pair (where both rows ran it)."""
    return [p["machine_ratio"] for p in runtime_pairs(result) if p.get("machine_ratio")]


def raw_line(base: Path, new: Path) -> str:
    """The same comparison without the canary's adjustment, for the record."""
    code, result = compare(base, new, "--machine-speed", "ignore")
    return f"raw ratios (--machine-speed ignore): {verdicts(result)}, exit {code}"


def median_half_widths(store: Path) -> list[float]:
    """Each runtime row's median interval half-width / median, where the row keeps one."""
    widths = []
    for row in Store(store).rows("runtime"):
        record = row.record
        low, high = record.get("latency_ci_low_ms"), record.get("latency_ci_high_ms")
        median = record.get("latency_median_ms")
        if low is not None and high is not None and median:
            widths.append(max(median - low, high - median) / median)
    return widths


def spread(values: list[float], percent: bool = True) -> str:
    """`min 1.2%, median 2.0%, max 3.1%` of fractions, or of ratios: `min 1.08x, ...`."""
    if not values:
        return "none"
    shown = [
        f"{name} {v * 100:.1f}%" if percent else f"{name} {v:.3g}x"
        for name, v in zip(
            ("min", "median", "max"),
            (min(values), statistics.median(values), max(values)),
            strict=True,
        )
    ]
    return ", ".join(shown)


def unjudged(pairs: list[dict[str, Any]]) -> list[str]:
    """Rows without a verdict (no samples kept, too few): a check cannot pass on them."""
    return [f"{p['what']}: {p['verdict']}" for p in pairs if p["verdict"] not in JUDGED]


def no_false_alarm(code: int, result: dict[str, Any]) -> tuple[bool, str]:
    """(a): two runs of the same code: every row judged, none `slower`, exit code 0."""
    pairs = runtime_pairs(result)
    slower = [p["what"] for p in pairs if p["verdict"] == "slower"]
    missing = unjudged(pairs)
    passed = bool(pairs) and not slower and not missing and code == 0
    text = f"{len(pairs)} rows: {verdicts(result)}; exit {code}"
    text += f"; slower: {', '.join(slower)}" if slower else ""
    return passed, text + (f"; no verdict: {'; '.join(missing)}" if missing else "")


def every_row(code: int, result: dict[str, Any], verdict: str, exit_code: int) -> tuple[bool, str]:
    """(b): every runtime row has `verdict`, and the command exits with `exit_code`."""
    pairs = runtime_pairs(result)
    others = [f"{p['what']}: {p['verdict']}" for p in pairs if p["verdict"] != verdict]
    passed = bool(pairs) and not others and code == exit_code
    ratios = [p["ratio"] for p in pairs if p.get("ratio") is not None]
    text = (
        f"{len(pairs)} rows: {verdicts(result)}; ratio {spread(ratios, percent=False)}; exit {code}"
    )
    return passed, text + (f"; not {verdict}: {'; '.join(others)}" if others else "")


def report(name: str, check: tuple[bool, str]) -> bool:
    print(f"{'PASS' if check[0] else 'FAIL'} {name}: {check[1]}", flush=True)
    return check[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="pairs of back-to-back stores")
    parser.add_argument("--iterations", default="auto", help="auto (where supported) or a count")
    parser.add_argument("--max-time", type=float, default=None, help="auto: seconds a row")
    parser.add_argument("--threads", type=int, default=None, help="pin the base runs' threads")
    parser.add_argument("--slow-threads", type=int, default=1, help="the injected slowdown's")
    parser.add_argument("--out", type=Path, default=None, help="keep the stores here")
    parser.add_argument("--quick", action="store_true", help="one-block models: the logic only")
    args = parser.parse_args(argv)
    iterations = args.iterations if args.iterations == "auto" else int(args.iterations)
    with tempfile.TemporaryDirectory(prefix="compare-acceptance-") as scratch:
        folder = args.out or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        suite, iterations = write_suite(folder, iterations, args.quick, args.max_time)
        base_threads, slow_threads = torch_threads(args.threads), torch_threads(args.slow_threads)
        print(f"suite {suite} (iterations = {iterations!r}); torch threads: {base_threads} in "
              f"the base runs, {slow_threads} in the slowdown run", flush=True)  # fmt: skip
        results = []
        first = None
        for repeat in range(args.repeats):
            stores = [folder / f"repeat{repeat}-{side}.sqlite" for side in ("a", "b")]
            seconds = [measure(suite, store, args.threads) for store in stores]
            first = first or stores[0]
            code, result = compare(*stores)
            widths = interval_widths(result)
            halves = median_half_widths(stores[0]) + median_half_widths(stores[1])
            print(f"repeat {repeat + 1}: measured in {seconds[0]:.0f} s and {seconds[1]:.0f} s; "
                  f"ratio interval width {spread(widths)}; row median interval half-width "
                  f"{spread(halves)}; machine (canary) new / base "
                  f"{spread(machine_ratios(result), percent=False)}; "
                  f"{raw_line(*stores)}", flush=True)  # fmt: skip
            results.append(
                report(f"(a) no false alarm, repeat {repeat + 1}", no_false_alarm(code, result))
            )
        if first is None:
            return 0 if all(results) else 1
        slow = folder / "slow.sqlite"
        seconds = measure(suite, slow, args.slow_threads)
        print(f"slowdown run ({slow_threads} thread(s)) measured in {seconds:.0f} s", flush=True)
        code, result = compare(first, slow)
        print(f"machine (canary) slow / base {spread(machine_ratios(result), percent=False)}; "
              f"{raw_line(first, slow)}", flush=True)  # fmt: skip
        results.append(report("(b) fewer threads caught: every row slower, exit 1",
                              every_row(code, result, "slower", 1)))  # fmt: skip
        code, result = compare(slow, first)
        results.append(report("(b) the reverse: every row faster, exit 0",
                              every_row(code, result, "faster", 0)))  # fmt: skip
    print(f"{sum(results)} of {len(results)} checks passed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
