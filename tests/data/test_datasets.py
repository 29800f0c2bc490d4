"""Readers turn every supported layout into the same (path, label) list, or one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tsfbench.config import ConfigError
from tsfbench.data.datasets import (
    DATASETS,
    SYNTHETIC_MARKER,
    dataset_identity,
    read_class_index,
    read_dataset,
)


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


def test_the_synthetic_set_marks_itself_so_a_result_knows_it_for_certain(
    synth_csv: Path, tmp_path: Path
) -> None:
    marker = json.loads((synth_csv.parent / SYNTHETIC_MARKER).read_text())
    assert marker["dataset"] == "synthetic" and marker["classes"] == 4
    assert dataset_identity(synth_csv, "kinetics") == "synthetic"
    assert dataset_identity(synth_csv.parent / "videos", "folder") == "synthetic"
    assert dataset_identity(synth_csv, "kinetics", "synthetic") == "synthetic"
    with pytest.raises(ConfigError, match=r"dataset: 'k400', but .* synthetic set") as error:
        dataset_identity(synth_csv, "kinetics", "k400")
    assert "\n" not in str(error.value)
    # the same CSV format elsewhere is not taken for any dataset: declared, or `other`
    (tmp_path / "val.csv").write_text("a.mp4 0\n")
    assert dataset_identity(tmp_path / "val.csv", "kinetics") == "other"
    assert dataset_identity(tmp_path / "val.csv", "kinetics", "k600") == "k600"


@pytest.mark.parametrize("name", ["kinetics", "K400", "something"])
def test_an_unknown_dataset_is_one_line_naming_the_accepted_ones(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as error:
        dataset_identity(tmp_path / "val.csv", "kinetics", name)
    assert str(error.value) == f"dataset: unknown {name!r}; accepted: {', '.join(DATASETS)}"


def test_classids_json_beside_a_csv_is_read_without_class_index(tmp_path: Path) -> None:
    (tmp_path / "classids.json").write_text(json.dumps({"dog": 1, "cat": 0}))
    (tmp_path / "val.csv").write_text("a.mp4 dog\nb.mp4 cat\n")
    videos = read_dataset(tmp_path / "val.csv")
    assert [item.label for item in videos.items] == [1, 0]
    assert videos.classes == ("cat", "dog")
    assert videos.names_from == str(tmp_path / "classids.json")
    # an explicit --class-index still wins
    (tmp_path / "other.txt").write_text("dog\ncat\n")
    explicit = read_dataset(tmp_path / "val.csv", class_index=tmp_path / "other.txt")
    assert [item.label for item in explicit.items] == [0, 1]


def test_labels_are_renumbered_to_the_checkpoints_class_names(tmp_path: Path) -> None:
    """A data set's class ids (its classids.json) need not be the model's (`id2label`)."""
    (tmp_path / "classids.json").write_text(json.dumps({"playing_cards": 0, "abseiling": 1}))
    (tmp_path / "val.csv").write_text("a.mp4 0\nb.mp4 1\n")
    model = ["abseiling", "juggling", "Playing Cards"]  # matched ignoring case and `_`
    videos = read_dataset(tmp_path / "val.csv", labels=model)
    assert [item.label for item in videos.items] == [2, 0]
    assert videos.classes == tuple(model)
    # a CSV of names with no class index reads the checkpoint's names directly
    (tmp_path / "names").mkdir()
    (tmp_path / "names/val.csv").write_text("a.mp4 juggling\n")
    assert read_dataset(tmp_path / "names/val.csv", labels=model).items[0].label == 1
    # bare ids are the model's own
    (tmp_path / "ids").mkdir()
    (tmp_path / "ids/val.csv").write_text("a.mp4 2\n")
    assert read_dataset(tmp_path / "ids/val.csv", labels=model).classes == tuple(model)
    with pytest.raises(ConfigError, match=r"class 'abseiling' of .*classids.json is not among"):
        read_dataset(tmp_path / "val.csv", labels=["juggling", "playing cards"])


def test_folder_names_map_to_the_checkpoints_ids(synth_csv: Path) -> None:
    names = ["right_slow", "right_fast", "left_slow", "left_fast"]  # not the sorted order
    videos = read_dataset(synth_csv.parent / "videos", "folder", labels=names)
    for item in videos.items:
        assert names[item.label] == Path(item.path).parent.name
