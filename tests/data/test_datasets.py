"""Readers turn every supported layout into the same (path, label) list, or one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tsfbench.config import ConfigError
from tsfbench.data.datasets import read_class_index, read_dataset


def test_csv_space_or_comma_with_ids_or_names(tmp_path: Path) -> None:
    (tmp_path / "classes.json").write_text(json.dumps({"b": 1, "a": 0}))
    (tmp_path / "space.csv").write_text("x/1.mp4 0\ny/2 two.mp4 1\n")
    (tmp_path / "comma.csv").write_text("path,label\nx/1.mp4,a\ny/2 two.mp4,b\n")
    space = read_dataset(tmp_path / "space.csv", "kinetics", class_index=tmp_path / "classes.json")
    comma = read_dataset(tmp_path / "comma.csv", "kinetics", class_index=tmp_path / "classes.json")
    assert space.items == comma.items
    assert space.items[1].path == str(tmp_path / "y/2 two.mp4") and space.items[1].label == 1
    assert space.classes == ("a", "b")


def test_bad_label_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "val.csv").write_text("a.mp4 0\nb.mp4 dog\n")
    with pytest.raises(ConfigError, match=r"val.csv:2: label 'dog'"):
        read_dataset(tmp_path / "val.csv")


@pytest.mark.parametrize(
    ("fmt", "files", "message"),
    [
        ("kinetics", {"val.csv": b"\xe9\xff\x00 0\n"}, "val.csv is not a UTF-8 text file"),
        ("kinetics", {"val.csv": b"a.mp4 -1\n"}, "label -1 is negative"),
        ("ssv2", {"labels.json": b'["a"]', "validation.json": b'[{"idx": 1}]'}, "id, template"),
        ("diving48", {"Diving48_V2_test.json": b'{"x": 1}'}, "vid_name, label"),
        ("diving48", {"Diving48_V2_test.json": b'[{"vid_name": "v", "label": "x"}]'}, "'x'"),
    ],
)
def test_malformed_files_are_one_clear_line(
    tmp_path: Path, fmt: str, files: dict[str, bytes], message: str
) -> None:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(ConfigError, match=message):
        read_dataset(tmp_path / "val.csv" if fmt == "kinetics" else tmp_path, fmt)


def test_a_folder_given_as_the_csv_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder; give its CSV, or --format folder"):
        read_dataset(tmp_path, "kinetics")


def test_ssv2_templates_map_through_the_labels_file(tmp_path: Path) -> None:
    (tmp_path / "something-something-v2-labels.json").write_text(
        json.dumps({"Pushing something": "1", "Holding something": "0"})
    )
    entries = [{"id": "7", "template": "Pushing [something]"}]
    (tmp_path / "something-something-v2-validation.json").write_text(json.dumps(entries))
    videos = read_dataset(tmp_path, "ssv2")
    assert [(Path(i.path).name, i.label) for i in videos.items] == [("7.webm", 1)]
    assert read_class_index(tmp_path / "something-something-v2-labels.json")[1] == (
        "Pushing something"
    )


def test_diving48_annotations(tmp_path: Path) -> None:
    (tmp_path / "rgb").mkdir()
    entries = [{"vid_name": "abc_00001", "label": 47, "start_frame": 0, "end_frame": 50}]
    (tmp_path / "Diving48_V2_test.json").write_text(json.dumps(entries))
    videos = read_dataset(tmp_path, "diving48")
    assert videos.items[0].path == str(tmp_path / "rgb" / "abc_00001.mp4")
    assert len(videos.classes) == 48


def test_folder_tree_and_synthetic_csv_agree(synth_csv: Path) -> None:
    csv = read_dataset(synth_csv, "kinetics", class_index=synth_csv.parent / "classids.json")
    folder = read_dataset(synth_csv.parent / "videos", "folder")
    assert sorted(csv.items, key=lambda i: i.path) == sorted(folder.items, key=lambda i: i.path)
    assert csv.classes == folder.classes
