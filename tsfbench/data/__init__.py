"""Video data for accuracy runs: dataset readers, subsets, the test views, synthetic videos.

Nothing here imports a decoder at module level: decord (reading) and PyAV (writing synthetic
videos) are imported by the functions that use them.
"""

from tsfbench.data.datasets import FORMATS, VideoItem, VideoSet, read_class_index, read_dataset
from tsfbench.data.sampling import clip_indices, crop_offsets, segment_indices
from tsfbench.data.subset import parse_fraction, restrict, select_subset, shard
from tsfbench.data.video import MEAN, SKIP_REASONS, STD, VideoViews, ViewSpec, decode_views

__all__ = [
    "FORMATS",
    "MEAN",
    "SKIP_REASONS",
    "STD",
    "VideoItem",
    "VideoSet",
    "VideoViews",
    "ViewSpec",
    "clip_indices",
    "crop_offsets",
    "decode_views",
    "parse_fraction",
    "read_class_index",
    "read_dataset",
    "restrict",
    "segment_indices",
    "select_subset",
    "shard",
]
