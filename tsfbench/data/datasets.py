"""Dataset readers: every format becomes one list of (path, label id) plus the class names.

Formats as the datasets ship them (paper Sec. 4: Kinetics, Something-Something-V2, Diving-48)
and as PySlowFast reads them; each reader checks its input once and raises `ConfigError` with
the file and line at fault, so the decoding and evaluation code can assume a clean list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tsfbench.errors import ConfigError

FORMATS = ("kinetics", "ssv2", "diving48", "folder")
VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v")
# What a result was measured on. A format is not a dataset (a Kinetics-style CSV can list any
# videos), so this is declared (`--dataset`, a suite's `dataset`) or known for certain (the
# marker `tsfbench synth` leaves); undeclared data is `other`.
DATASETS = ("k400", "k600", "ssv2", "diving48", "synthetic", "other")
SYNTHETIC_MARKER = "tsfbench-synthetic.json"  # written by `write_synthetic` beside its CSV
CLASS_INDEX = "classids.json"  # PySlowFast's name; read without --class-index when beside a CSV


@dataclass(frozen=True)
class VideoItem:
    """One labelled video; `path` is absolute so any worker or rank can open it."""

    path: str
    label: int


@dataclass(frozen=True)
class VideoSet:
    """A dataset: its videos and the name of each class id (`classes[label]`)."""

    items: tuple[VideoItem, ...]
    classes: tuple[str, ...]
    root: str = ""
    names_from: str = ""  # the file (or source) the class names came from; "" = bare ids

    def relative(self, item: VideoItem) -> str:
        """The path as stored with a result, relative to the root so subsets move with data."""
        path = Path(item.path)
        return (
            str(path.relative_to(self.root))
            if self.root and path.is_relative_to(self.root)
            else item.path
        )


def _read_text(path: Path, what: str) -> str:
    """A text file's contents; a binary or non-UTF-8 file is a `ConfigError` naming it."""
    try:
        return path.read_text()
    except UnicodeDecodeError as error:
        raise ConfigError(f"{what}: {path} is not a UTF-8 text file ({error.reason})") from None


def read_class_index(path: str | Path) -> list[str]:
    """Class names by id from a class-index file.

    Accepts a JSON object name -> id (PySlowFast's `classids.json`, SSv2's
    `something-something-v2-labels.json`, whose ids are strings), a JSON list of names, or a
    text file with one name per line (id = line number).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"class index: {path} does not exist")
    text = _read_text(path, "class index")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"class index: {path} is not valid JSON ({error})") from None
        if isinstance(data, list):
            return [str(name) for name in data]
        try:
            by_id = {int(value): str(name) for name, value in data.items()}
        except (AttributeError, TypeError, ValueError):
            raise ConfigError(f"class index: {path} must map class names to integer ids") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise ConfigError(f"class index: {path} ids must be 0..{len(by_id) - 1}, each once")
        return [by_id[i] for i in range(len(by_id))]
    return [line.strip() for line in text.splitlines() if line.strip()]


def _label_id(text: str, ids: dict[str, int] | None, where: str) -> int:
    text = text.strip().strip('"')
    if ids is not None and text in ids:
        return ids[text]
    try:
        label = int(text)
    except ValueError:
        hint = "not in the class index" if ids is not None else "not an integer; pass a class index"
        raise ConfigError(f"{where}: label {text!r} is {hint}") from None
    if label < 0:
        raise ConfigError(f"{where}: label {label} is negative; labels are class ids 0, 1, ...")
    return label


def read_csv(
    path: str | Path,
    root: str | Path | None = None,
    class_index: str | Path | None = None,
    labels: Sequence[str] | None = None,
) -> VideoSet:
    """Kinetics / PySlowFast CSV: `path label` per line, space or comma separated.

    Paths are relative to `root` (default: the CSV's folder); labels are ids or class names,
    looked up in the class index: `class_index`, else a `classids.json` beside the CSV, else
    `labels` (a checkpoint's class names). A header line whose label column reads `label` is
    skipped.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"data: {path} is a folder; give its CSV, or --format folder / ssv2 / diving48"
        )
    if not path.is_file():
        raise ConfigError(f"data: {path} does not exist")
    root = Path(root) if root is not None else path.parent
    if class_index is None and (path.parent / CLASS_INDEX).is_file():
        class_index = path.parent / CLASS_INDEX
    classes = read_class_index(class_index) if class_index else None
    names_from = str(class_index) if class_index else ""
    if classes is None and labels:
        classes, names_from = list(labels), "checkpoint"
    ids = {name: i for i, name in enumerate(classes)} if classes else None
    items = []
    for number, line in enumerate(_read_text(path, "data").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(",", 1) if "," in line else line.rsplit(None, 1)
        if len(parts) != 2:
            raise ConfigError(f"data: {path}:{number}: expected 'path label', got {line!r}")
        if number == 1 and parts[1].strip().lower() == "label":
            continue
        label = _label_id(parts[1], ids, f"data: {path}:{number}")
        items.append(VideoItem(str(root / parts[0].strip()), label))
    if not items:
        raise ConfigError(f"data: {path} lists no videos")
    names = classes or [str(i) for i in range(max(item.label for item in items) + 1)]
    return _checked(VideoSet(tuple(items), tuple(names), str(root), names_from), str(path))


def _find(root: Path, names: Sequence[str], what: str) -> Path:
    for name in names:
        if (root / name).exists():
            return root / name
    raise ConfigError(f"data: no {what} in {root}; expected one of {', '.join(names)}")


def _entries(path: Path, keys: tuple[str, ...]) -> list[dict[str, object]]:
    """The annotation list of `path`: JSON objects each holding `keys`, else a `ConfigError`."""
    data = _load_json(path)
    entries = data if isinstance(data, list) else [data]
    bad = next((e for e in entries if not isinstance(e, dict) or not set(keys) <= set(e)), None)
    if bad is not None or not entries:
        raise ConfigError(
            f"data: {path}: expected a JSON list of objects with {', '.join(keys)}; "
            f"got {str(bad if entries else data)[:80]!r}"
        )
    return entries


def _load_json(path: Path) -> object:
    try:
        return json.loads(_read_text(path, "data"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"data: {path} is not valid JSON ({error})") from None


def read_ssv2(root: str | Path, split: str = "validation") -> VideoSet:
    """Something-Something-V2: `something-something-v2-<split>.json` + `-labels.json` + videos.

    A video's label is its `template` with the brackets removed, looked up in the labels file;
    videos are `<id>.webm` in `20bn-something-something-v2/`, `videos/` or the root itself.
    """
    root = Path(root)
    labels = _find(root, ["something-something-v2-labels.json", "labels.json"], "labels file")
    annotations = _find(
        root, [f"something-something-v2-{split}.json", f"{split}.json"], f"{split} annotations"
    )
    classes = read_class_index(labels)
    ids = {name: i for i, name in enumerate(classes)}
    videos = next(
        (root / d for d in ("20bn-something-something-v2", "videos") if (root / d).is_dir()), root
    )
    items = []
    for entry in _entries(annotations, ("id", "template")):
        name = str(entry["template"]).replace("[", "").replace("]", "")
        if name not in ids:
            raise ConfigError(f"data: {annotations}: template {name!r} not in {labels.name}")
        items.append(VideoItem(str(videos / f"{entry['id']}.webm"), ids[name]))
    return _checked(
        VideoSet(tuple(items), tuple(classes), str(root), str(labels)), str(annotations)
    )


def read_diving48(root: str | Path, split: str = "test") -> VideoSet:
    """Diving-48: `Diving48_V2_<split>.json` (or V1) entries `vid_name`, `label`; `rgb/*.mp4`.

    Class names come from `Diving48_vocab.json` (takeoff-somersault-twist-flight) when present.
    """
    root = Path(root)
    annotations = _find(
        root, [f"Diving48_V2_{split}.json", f"Diving48_{split}.json"], f"{split} annotations"
    )
    videos = root / "rgb" if (root / "rgb").is_dir() else root
    entries = _entries(annotations, ("vid_name", "label"))
    labels = [_label_id(str(entry["label"]), None, f"data: {annotations}") for entry in entries]
    items = [
        VideoItem(str(videos / f"{entry['vid_name']}.mp4"), label)
        for entry, label in zip(entries, labels, strict=True)
    ]
    vocab = root / "Diving48_vocab.json"
    if vocab.is_file():
        classes = ["-".join(map(str, parts)) for parts in _load_json(vocab)]
    else:
        classes = [str(i) for i in range(max(item.label for item in items) + 1)]
    names_from = str(vocab) if vocab.is_file() else ""
    return _checked(VideoSet(tuple(items), tuple(classes), str(root), names_from), str(annotations))


def read_folder(root: str | Path, class_index: str | Path | None = None) -> VideoSet:
    """A folder per class (`root/<class>/<video>`); ids follow the class index or sorted names."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"data: {root} is not a folder")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    classes = read_class_index(class_index) if class_index else folders
    ids = {name: i for i, name in enumerate(classes)}
    items = []
    for name in folders:
        if name not in ids:
            raise ConfigError(f"data: folder {root / name} is not a class of the class index")
        for video in sorted((root / name).iterdir()):
            if video.suffix.lower() in VIDEO_SUFFIXES:
                items.append(VideoItem(str(video), ids[name]))
    if not items:
        raise ConfigError(f"data: no videos ({', '.join(VIDEO_SUFFIXES)}) under {root}/<class>/")
    names_from = str(class_index) if class_index else f"{root}/<class>/"
    return VideoSet(tuple(items), tuple(classes), str(root), names_from)


def _checked(videos: VideoSet, source: str) -> VideoSet:
    bad = next((item for item in videos.items if not 0 <= item.label < len(videos.classes)), None)
    if bad is not None:
        raise ConfigError(
            f"data: {source}: label {bad.label} outside 0..{len(videos.classes) - 1} ({bad.path})"
        )
    return videos


def _normalised(name: str) -> str:
    """Spelling-blind class name: Kinetics lists write `abseiling`, `"playing cards"` or
    `playing_cards` for the same class."""
    return " ".join(name.strip().strip('"').replace("_", " ").casefold().split())


def relabel(videos: VideoSet, labels: Sequence[str]) -> VideoSet:
    """`videos` with the label ids of a model whose class names are `labels` (by id).

    Named classes are matched by name (exactly, else ignoring case, quotes and `_` vs space), so
    a data set whose class index orders classes differently from the checkpoint is still scored
    against the right outputs. Bare ids are taken as the model's own.
    """
    labels = tuple(labels)
    if not videos.names_from:
        fits = all(item.label < len(labels) for item in videos.items)
        return replace(videos, classes=labels, names_from="checkpoint") if fits else videos
    exact = {name: i for i, name in enumerate(labels)}
    loose: dict[str, list[int]] = {}
    for i, name in enumerate(labels):
        loose.setdefault(_normalised(name), []).append(i)
    ids: dict[int, int] = {}
    for label in sorted({item.label for item in videos.items}):
        name = videos.classes[label]
        matches = [exact[name]] if name in exact else loose.get(_normalised(name), [])
        if len(matches) != 1:
            raise ConfigError(
                f"labels: class {name!r} of {videos.names_from} is not among the checkpoint's "
                f"{len(labels)} class names (config.json id2label, e.g. {labels[0]!r}); give "
                f"--class-index with the checkpoint's names"
            )
        ids[label] = matches[0]
    items = tuple(VideoItem(item.path, ids[item.label]) for item in videos.items)
    return replace(videos, items=items, classes=labels)


def synthetic_marker(data: str | Path, format: str = "kinetics") -> Path | None:
    """The marker `tsfbench synth` left with `data`, if any: its root holds the CSV and, read as
    a folder per class, the `videos/` tree."""
    data = Path(data)
    roots = [data.parent] if format == "kinetics" else [data, data.parent]
    return next((r / SYNTHETIC_MARKER for r in roots if (r / SYNTHETIC_MARKER).is_file()), None)


def check_dataset(declared: str | None) -> None:
    """A declared dataset is one of `DATASETS` (None: not declared)."""
    if declared is not None and declared not in DATASETS:
        raise ConfigError(f"dataset: unknown {declared!r}; accepted: {', '.join(DATASETS)}")


def dataset_identity(data: str | Path, format: str, declared: str | None = None) -> str:
    """The dataset a result is measured on: `declared` (checked), else `synthetic` when the
    data carries the synth marker, else `other`; never inferred from the format."""
    check_dataset(declared)
    marker = synthetic_marker(data, format)
    if marker is not None and declared not in (None, "synthetic"):
        raise ConfigError(
            f"dataset: {declared!r}, but {data} is the synthetic set `tsfbench synth` wrote "
            f"({marker}); declare synthetic or leave it out"
        )
    return declared or ("synthetic" if marker is not None else "other")


def read_dataset(
    data: str | Path,
    format: str = "kinetics",
    *,
    class_index: str | Path | None = None,
    root: str | Path | None = None,
    split: str | None = None,
    labels: Sequence[str] | None = None,
) -> VideoSet:
    """Any supported format; `data` is the CSV (kinetics) or the dataset folder (the others).

    `labels` are the class names of the model that will score the videos (a checkpoint's, by
    id): the labels are renumbered to match them (`relabel`).
    """
    if format == "kinetics":
        videos = read_csv(data, root, class_index, labels)
    elif format == "ssv2":
        videos = read_ssv2(data, split or "validation")
    elif format == "diving48":
        videos = read_diving48(data, split or "test")
    elif format == "folder":
        videos = read_folder(data, class_index)
    else:
        raise ConfigError(f"format: unknown {format!r}; accepted: {', '.join(FORMATS)}")
    return relabel(videos, labels) if labels else videos
