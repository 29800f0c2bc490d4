"""Video-level accuracy under the paper's test protocol, on one process or many.

A video's score is the softmax averaged over its views (paper appendix: 1 x 3 views for
TimeSformer, 10 x 3 for the 3D CNNs); top-1 / top-5 and per-class accuracy count videos. Under
`torchrun` each rank takes every world-th video, a disjoint shard with nothing padded or
repeated (a `DistributedSampler` pads the last batch and would count some videos twice), and the
counts are summed with `all_reduce`, so the result is the single-process one. Throughput is
split into decode clips/s (the loader's capacity) and model clips/s, to show which bounds a run.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader

from tsfbench.config import AccuracySettings, ConfigError, RunConfig
from tsfbench.data.datasets import VideoSet, dataset_identity, read_dataset
from tsfbench.data.decoders import DECODERS, PYAV, SKIP_REASONS
from tsfbench.data.sampling import dataset_sampling
from tsfbench.data.subset import parse_fraction, select_subset, shard
from tsfbench.data.video import VideoViews, ViewSpec, device_views
from tsfbench.models.build import build_model
from tsfbench.models.registry import get_preset

VideoProgress = Callable[[int, int], None]  # (videos done on this rank, videos on this rank)
TOP_K = 5


@dataclass
class AccuracyResult:
    """The figures of one evaluation; `as_dict()` is the flat record stored with the config."""

    videos: int  # selected
    evaluated: int
    skipped: int
    top1: float  # percent of evaluated videos
    top5: float  # top-min(5, classes)
    views: int
    clips: int  # model inputs run (evaluated videos x views)
    world_size: int
    wall_s: float
    decode_clips_per_s: float  # loader capacity: per-worker rate x workers, summed over ranks
    model_clips_per_s: float  # forward passes only, summed over ranks
    clips_per_s: float  # end to end
    bound: str  # "decode" or "model": the slower of the two
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_videos: list[dict[str, str]] = field(default_factory=list)
    # evaluated videos per decoder: decord, or PyAV where decord cannot read one (AV1)
    decoders: dict[str, int] = field(default_factory=dict)
    pyav_videos: list[str] = field(default_factory=list)  # those PyAV read; the rest decord
    per_class: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[list[Any]] = field(default_factory=list)  # [video, label, top-1 class]
    video_list: list[str] = field(default_factory=list)  # the subset, to rerun it exactly

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def distributed(join: bool = True) -> tuple[int, int]:
    """(rank, world size): joins the process group `torchrun` describes, if there is one.

    `join=False` is for a caller whose ranks evaluate different things (`tsfbench run` gives
    each rank its own tasks): every rank then evaluates its whole subset alone.
    """
    if not join:
        return 0, 1
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if torch.cuda.is_available():
            # Each rank on its own GPU before NCCL forms a communicator (it rejects two ranks
            # on one GPU); the counts and rates are CPU tensors, reduced by gloo.
            gpu = torch.device("cuda", _local_gpu())
            torch.cuda.set_device(gpu)
            dist.init_process_group("cpu:gloo,cuda:nccl", device_id=gpu)
        else:
            dist.init_process_group("gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def leave_group() -> None:
    """Leave the `torchrun` group `distributed` joined, together: no rank exits while another
    still reduces its counts."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _local_gpu() -> int:
    """This rank's GPU: its LOCAL_RANK-th visible one. Every rank of the node checks the
    node's rank count, so that none hangs waiting for a rank that stopped here."""
    local = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", 0)))
    ranks = max(int(os.environ.get("LOCAL_WORLD_SIZE", 0)), local + 1)
    gpus = torch.cuda.device_count()
    if ranks > gpus:
        raise ConfigError(
            f"nproc-per-node: {ranks} ranks on this node but {gpus} GPU(s) visible; start at "
            f"most {gpus} (torchrun --nproc-per-node {gpus}), one GPU per rank"
        )
    return local


def default_device() -> torch.device:
    """The current CUDA device, or the CPU: `distributed` made it LOCAL_RANK's GPU when it
    joined a group; otherwise it is the first visible GPU, which for a rank of `tsfbench run`
    is the one GPU `runner.bind_rank_gpu` left it (asking for cuda:LOCAL_RANK there would
    name a GPU that rank cannot see)."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def _worker_init(_: int) -> None:
    # Each worker decodes one video at a time; parallelism comes from the workers, and intra-op
    # threads on top of them would oversubscribe the cores.
    torch.set_num_threads(1)


class _Scores:
    """Per-video softmax sums, filled batch by batch, finished when all views are in."""

    def __init__(self, views: int, classes: int) -> None:
        self.views, self.classes = views, classes
        self.pending: list[tuple[int, int, Tensor]] = []  # (video, label, views) not yet run
        self.sums: dict[int, Tensor] = {}
        self.seen: dict[int, int] = {}
        self.labels: dict[int, int] = {}

    def add(self, video: int, label: int, views: Tensor) -> None:
        self.pending.append((video, label, views))
        self.labels[video] = label

    def queued(self) -> int:
        return sum(v.shape[0] for _, _, v in self.pending)

    def take(self, rows: int) -> tuple[Tensor, list[int]]:
        """Up to `rows` views from the front of the queue and the video of each."""
        chunks, owners = [], []
        while self.pending and len(owners) < rows:
            video, label, views = self.pending[0]
            n = min(rows - len(owners), views.shape[0])
            chunks.append(views[:n])
            owners += [video] * n
            if n == views.shape[0]:
                self.pending.pop(0)
            else:
                self.pending[0] = (video, label, views[n:])
        return torch.cat(chunks), owners

    def record(self, probs: Tensor, owners: list[int]) -> list[tuple[int, int, Tensor]]:
        """Add view probabilities; return (video, label, mean probs) of completed videos."""
        done = []
        for row, video in zip(probs, owners, strict=True):
            self.sums[video] = self.sums.get(video, 0) + row
            self.seen[video] = self.seen.get(video, 0) + 1
            if self.seen[video] == self.views:
                done.append((video, self.labels.pop(video), self.sums.pop(video) / self.views))
                del self.seen[video]
        return done


def evaluate(
    model: nn.Module,
    videos: VideoSet,
    spec: ViewSpec,
    *,
    classes: int,
    batch: int = 8,
    workers: int = 0,
    device: torch.device | str = "cpu",
    progress: VideoProgress | None = None,
    join: bool = True,
    pixels: str = "uint8",
) -> AccuracyResult:
    """Accuracy of `model` on `videos` (this rank's shard when distributed), summed over ranks.

    `batch` counts clips (views) per forward pass, independently of how many views a video has;
    `join=False` evaluates every video here, whatever `torchrun` started (see `distributed`).
    Workers ship uint8 pixels, made into float views on `device` (`pixels="float32"`: float
    views from the workers, as before; the results are the same, see `video.device_views`).
    """
    labels = max((item.label for item in videos.items), default=0)
    if labels >= classes:  # checked on every rank before any collective, so none hangs
        raise ConfigError(
            f"classes: the data has label {labels}, the model {classes} classes; "
            f"give --classes {labels + 1} or more (a checkpoint's head fixes it)"
        )
    rank, world = distributed(join)
    device = torch.device(device)
    local = shard(range(len(videos.items)), rank, world)
    loader = DataLoader(
        VideoViews(videos.items, spec, local, pixels=pixels),
        batch_size=None,
        num_workers=workers,
        worker_init_fn=_worker_init if workers else None,
        pin_memory=device.type == "cuda",
    )
    k = min(TOP_K, classes)
    correct = torch.zeros(2, classes, dtype=torch.int64)  # top-1, top-k hits per class
    totals = torch.zeros(classes, dtype=torch.int64)
    skips: list[dict[str, str]] = []
    predictions: list[list[Any]] = []  # [video, label, top-1 class, decoder]
    decoder_of: dict[int, str] = {}
    scores = _Scores(spec.views, classes)
    decode_s = model_s = 0.0
    clips = done = 0

    def run(rows: int) -> None:
        nonlocal model_s, clips, done
        inputs, owners = scores.take(rows)
        start = time.perf_counter()
        with torch.inference_mode():
            probs = model(inputs.to(device, non_blocking=True)).float().softmax(-1).cpu()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        model_s += time.perf_counter() - start
        clips += len(owners)
        for video, label, mean in scores.record(probs, owners):
            top = mean.topk(k).indices.tolist()
            totals[label] += 1
            correct[0, label] += int(top[0] == label)
            correct[1, label] += int(label in top)
            predictions.append([video, label, top[0], decoder_of[video]])
            done += 1
            if progress:
                progress(done + len(skips), len(local))

    wall = time.perf_counter()
    model.eval()
    for item in loader:
        decode_s += item["decode_s"]
        if item["reason"]:
            skips.append(
                {"video": item["index"], "reason": item["reason"], "detail": item["detail"]}
            )
            if progress:
                progress(done + len(skips), len(local))
            continue
        # Finishing the views is device work, timed with the model (on a GPU its kernels run
        # asynchronously and land in the next timed forward anyway).
        start = time.perf_counter()
        decoder_of[item["index"]] = item["decoder"]
        scores.add(item["index"], int(item["label"]), device_views(item, spec, device))
        model_s += time.perf_counter() - start
        while scores.queued() >= batch:
            run(batch)
    while scores.queued():
        run(batch)
    wall = time.perf_counter() - wall

    parallel = max(workers, 1)
    rates = torch.tensor(
        [
            clips / decode_s * parallel if decode_s else 0.0,
            clips / model_s if model_s else 0.0,
            wall,
        ],
        dtype=torch.float64,
    )
    counts = torch.cat([correct.flatten(), totals, torch.tensor([clips])])
    skips_all, predictions_all = skips, predictions
    if world > 1:
        skips_all, predictions_all = _sum_over_ranks(counts, rates, skips, predictions, world)
    correct = counts[: 2 * classes].view(2, classes)
    totals = counts[2 * classes : 3 * classes]
    clips = int(counts[-1])
    evaluated = int(totals.sum())
    names = [*videos.classes[:classes], *map(str, range(len(videos.classes), classes))]
    per_class = [
        {
            "class": names[c],
            "id": c,
            "videos": int(totals[c]),
            "top1": 100 * int(correct[0, c]) / int(totals[c]),
        }
        for c in range(classes)
        if totals[c]
    ]
    by_reason = {reason: 0 for reason in SKIP_REASONS}
    for skip in skips_all:
        by_reason[skip["reason"]] += 1
    relative = [videos.relative(item) for item in videos.items]
    decode_rate, model_rate, wall = (float(x) for x in rates)
    return AccuracyResult(
        videos=len(videos.items),
        evaluated=evaluated,
        skipped=len(skips_all),
        top1=100 * int(correct[0].sum()) / evaluated if evaluated else 0.0,
        top5=100 * int(correct[1].sum()) / evaluated if evaluated else 0.0,
        views=spec.views,
        clips=clips,
        world_size=world,
        wall_s=wall,
        decode_clips_per_s=decode_rate,
        model_clips_per_s=model_rate,
        clips_per_s=clips / wall if wall else 0.0,
        bound="decode" if decode_rate < model_rate else "model",
        skipped_by_reason=by_reason,
        skipped_videos=sorted(
            ({**s, "video": relative[s["video"]]} for s in skips_all), key=lambda s: s["video"]
        ),
        decoders={d: sum(p[3] == d for p in predictions_all) for d in DECODERS},
        pyav_videos=sorted(relative[p[0]] for p in predictions_all if p[3] == PYAV),
        per_class=per_class,
        predictions=[[relative[v], label, pred] for v, label, pred, _ in sorted(predictions_all)],
        video_list=relative,
    )


def _sum_over_ranks(
    counts: Tensor, rates: Tensor, skips: list[Any], predictions: list[Any], world: int
) -> tuple[list[Any], list[Any]]:
    """Every rank's share, in place: hit and video counts add up, and so do the throughputs of
    ranks decoding and running in parallel, while the wall time (`rates[2]`) is the slowest
    rank's. Returns every rank's skipped videos and predictions."""
    dist.all_reduce(counts)
    wall = rates[2:].clone()
    dist.all_reduce(rates)
    dist.all_reduce(wall, op=dist.ReduceOp.MAX)
    rates[2] = wall[0]
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, (skips, predictions))
    return [s for part in gathered for s in part[0]], [p for part in gathered for p in part[1]]


def view_spec(config: RunConfig, format: str = "kinetics", dataset: str = "other") -> ViewSpec:
    """The test views of a configuration: its F and crop, its preset's rate; `config.views` =
    clips x crops.

    The views are split as the preset does: a multiple of its spatial crops becomes
    views / crops temporal clips of that many crops, otherwise single centre crops.
    Something-Something-V2 samples one frame per segment (released SSv2 loader), one clip;
    the synthetic set symmetrically in time (`sampling.dataset_sampling`).
    """
    preset = get_preset(config.model)
    views = config.views
    crops = preset.spatial_crops if views % preset.spatial_crops == 0 else 1
    if crops not in (1, 3):
        crops = 1
    sampling = dataset_sampling(format, dataset)
    if sampling == "segment" and views != crops:
        raise ConfigError(f"views: {views}; ssv2 takes one clip, so views must be 1 or 3")
    normalise = {"mean": preset.mean, "std": preset.std} if preset.mean and preset.std else {}
    return ViewSpec(
        frames=config.frames,
        size=config.size,
        rate=preset.sampling_rate,
        clips=views // crops,
        crops=crops,
        sampling=sampling,
        **normalise,
    )


def accuracy(
    config: RunConfig,
    settings: AccuracySettings,
    *,
    progress: VideoProgress | None = None,
    model: nn.Module | None = None,
    distributed_eval: bool = True,
    **overrides: object,
) -> dict[str, Any]:
    """The whole `tsfbench accuracy` run as a flat record: read, subset, build, load, evaluate.

    The dataset is `settings.dataset` if declared (`datasets.DATASETS`), recorded so that a
    report compares only declared paper datasets with the paper; undeclared, it is `synthetic`
    for a set `tsfbench synth` wrote and `other` otherwise. A `transformers` checkpoint folder
    fixes the model's size and gives the class names the data's labels are mapped to.
    `model` skips the build (tests, or a caller holding one); `overrides` go to `build_model`;
    `distributed_eval=False` keeps each `torchrun` rank to itself (see `distributed`).
    """
    from tsfbench.models.checkpoint import hf_setup, is_hf_folder, load_checkpoint

    data, checkpoint = settings.data, settings.checkpoint
    dataset = dataset_identity(data, settings.format, settings.dataset)
    if importlib.util.find_spec("decord") is None:  # checked here, not in a loader worker
        raise ConfigError(
            "decord: not installed, and accuracy needs it to decode videos; `pip install decord` "
            "(wheels for x86_64 only)"
        )
    distributed(distributed_eval)
    device = settings.device or default_device()
    labels: tuple[str, ...] = ()
    if checkpoint is not None and is_hf_folder(checkpoint):
        overrides, labels = hf_setup(config, checkpoint, overrides)
    videos = read_dataset(
        data, settings.format, class_index=settings.class_index, labels=labels or None
    )
    fraction = parse_fraction(settings.subset) if settings.subset is not None else None
    videos = select_subset(
        videos, fraction=fraction, per_class=settings.per_class, seed=settings.seed
    )
    spec = view_spec(config, settings.format, dataset)
    if settings.rate is not None:
        spec = replace(spec, rate=settings.rate)
    if model is None:
        model = build_model(config, device, **overrides)
    loaded: dict[str, Any] = {}
    if checkpoint is not None:
        loaded = load_checkpoint(model, checkpoint).as_dict()
    result = evaluate(
        model.to(device),
        videos,
        spec,
        classes=config.classes,
        batch=settings.batch,
        workers=settings.workers,
        device=device,
        progress=progress,
        join=distributed_eval,
    )
    return {
        **config.as_dict(),
        "data": str(data),
        "format": settings.format,
        "dataset": dataset,
        "class_names_from": videos.names_from,
        "subset": settings.subset or "",
        "per_class_subset": settings.per_class or 0,
        "seed": settings.seed,
        "rate": spec.rate,
        "temporal_clips": spec.clips,
        "spatial_crops": spec.crops,
        "sampling": spec.sampling,
        "batch": settings.batch,
        "workers": settings.workers,
        "device": str(device),
        **loaded,
        **result.as_dict(),
    }
