"""Behaviour of the TimeSformer family: shapes, backends, each scheme's attention pattern, keys."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from tsfbench.models import timesformer
from tsfbench.models.registry import ATTENTIONS, POS_EMBEDS
from tsfbench.models.timesformer import TimeSformer, resize_pos_tables

MakeModel = Callable[..., TimeSformer]


@pytest.fixture
def make_model(tiny: dict[str, object]) -> MakeModel:
    """`make_model(attention, **overrides)`: the tiny model with 5 classes, built for 4 x 32
    unless `frames` / `size` say otherwise, in eval mode."""

    def make(attention: str, **kwargs: object) -> TimeSformer:
        config = {"frames": 4, "size": 32, "num_classes": 5} | tiny | kwargs
        return TimeSformer(attention=attention, **config).eval()

    return make


@pytest.mark.parametrize("pos_embed", POS_EMBEDS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_logits_shape_for_every_scheme_and_pos_embed(
    attention: str, pos_embed: str, make_model: MakeModel
) -> None:
    model = make_model(attention, pos_embed=pos_embed)
    logits = model(torch.randn(2, 3, 4, 32, 32))
    assert logits.shape == (2, 5)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_other_clip_lengths_and_odd_grids_run_with_resized_tables(
    attention: str, make_model: MakeModel
) -> None:
    model = make_model(attention)  # built for 4 x 32: tables of 4 frames and a 2 x 2 grid
    assert model(torch.randn(1, 3, 3, 48, 80)).shape == (1, 5)  # 3 frames, a 3 x 5 grid
    assert model(torch.randn(1, 3, 1, 16, 16)).shape == (1, 5)  # extents of 1


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_sdpa_and_math_backends_agree(attention: str, make_model: MakeModel) -> None:
    model = make_model(attention)
    clip = torch.randn(2, 3, 4, 32, 32)
    sdpa = model(clip)
    model.set_backend("math")
    torch.testing.assert_close(model(clip), sdpa, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_train_step_reaches_every_parameter(attention: str, make_model: MakeModel) -> None:
    model = make_model(attention, drop_path=0.1).train()
    model(torch.randn(2, 3, 4, 32, 32)).sum().backward()
    untouched = [name for name, p in model.named_parameters() if p.grad is None]
    assert not untouched


def test_space_never_mixes_frames(make_model: MakeModel) -> None:
    """With `space`, perturbing frame j leaves every token of frame i unchanged before pooling."""
    model = make_model("space")
    clip = torch.randn(1, 3, 4, 32, 32)
    perturbed = clip.clone()
    perturbed[:, :, 2] += 1.0

    def tokens(video: torch.Tensor) -> torch.Tensor:
        x, cls = model.embed(video)
        frames = x.shape[1]
        x = x.reshape(frames, 1, *x.shape[2:])
        tokens = torch.cat((cls.repeat_interleave(frames, 0), x.flatten(1, 3)), dim=1)
        for block in model.blocks:
            tokens = block(tokens, x.shape[1:4])
        return tokens  # (frames, 1 + H'W', D): frame f's class token and patches

    before, after = tokens(clip), tokens(perturbed)
    changed = (before - after).abs().amax(dim=(1, 2)) > 1e-6
    assert changed.tolist() == [False, False, True, False]


# For each scheme and step: does perturbing patch `src` (t, h, w) reach patch `dst` in one step?
REACH = {
    ("joint", 0): lambda s, d: True,
    ("divided", 0): lambda s, d: s[1:] == d[1:],  # time: same position
    ("divided", 1): lambda s, d: s[0] == d[0],  # space: same frame
    ("axial", 0): lambda s, d: s[1:] == d[1:],  # time
    ("axial", 1): lambda s, d: (s[0], s[1]) == (d[0], d[1]),  # width: same frame and row
    ("axial", 2): lambda s, d: (s[0], s[2]) == (d[0], d[2]),  # height: same frame and column
    # local: same F x H'/2 x W'/2 window (grid 4 x 4 -> halves of 2)
    ("local_global", 0): lambda s, d: (s[1] // 2, s[2] // 2) == (d[1] // 2, d[2] // 2),
    # global: same (t mod 2, h mod 2, w mod 2) lattice
    ("local_global", 1): lambda s, d: all(a % 2 == b % 2 for a, b in zip(s, d, strict=True)),
}


@pytest.mark.parametrize(("attention", "step"), list(REACH))
def test_each_step_mixes_only_its_groups(attention: str, step: int, make_model: MakeModel) -> None:
    model = make_model(attention, size=64)
    block = model.blocks[0]
    for fc in (m for name, m in block.named_children() if name.endswith("_fc")):
        torch.nn.init.normal_(fc.weight)  # block 0's extra-step Linear is not zero; be sure
    x = torch.randn(1, 4, 4, 4, 64)
    cls = torch.randn(1, 1, 64)
    src = (1, 2, 1)
    perturbed = x.clone()
    perturbed[(0, *src)] += torch.randn(64)  # not constant: LayerNorm would remove that
    with torch.no_grad():
        base, _ = block.run_step(step, x, cls)
        moved, _ = block.run_step(step, perturbed, cls)
    changed = (base - moved).abs().amax(dim=-1)[0] > 1e-6
    for dst in ((t, h, w) for t in range(4) for h in range(4) for w in range(4)):
        assert bool(changed[dst]) == REACH[attention, step](src, dst), (src, dst)


def released_divided_keys(depth: int = 12) -> set[str]:
    """The released checkpoint's key set for divided attention, written from its spec."""
    keys = {"cls_token", "pos_embed", "time_embed"}
    for module in ("patch_embed.proj", "norm", "head"):
        keys |= {f"{module}.weight", f"{module}.bias"}
    per_block = ["norm1", "attn.qkv", "attn.proj", "temporal_norm1", "temporal_attn.qkv"]
    per_block += ["temporal_attn.proj", "temporal_fc", "norm2", "mlp.fc1", "mlp.fc2"]
    for i in range(depth):
        keys |= {f"blocks.{i}.{m}.{p}" for m in per_block for p in ("weight", "bias")}
    return keys


def test_released_divided_checkpoint_loads_strict() -> None:
    with torch.device("meta"):
        model = TimeSformer(attention="divided")  # the full-size model, allocated nowhere
    assert set(model.state_dict()) == released_divided_keys()
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    model_state = {f"model.{k}": torch.empty(shape, device="meta") for k, shape in shapes.items()}
    stripped = {k.removeprefix("model."): v for k, v in model_state.items()}
    model.load_state_dict(stripped, strict=True, assign=True)


@pytest.mark.parametrize("attention", ["space", "joint"])
def test_single_step_schemes_have_the_released_vit_keys(attention: str) -> None:
    with torch.device("meta"):
        keys = set(TimeSformer(attention=attention).state_dict())
    temporal = {k for k in released_divided_keys() if "temporal" in k}
    expected = released_divided_keys() - temporal
    if attention == "space":  # the released `space_only` has no temporal table
        expected -= {"time_embed"}
    assert keys == expected


def test_resized_tables_load_into_a_model_of_another_size(make_model: MakeModel) -> None:
    source = make_model("divided")
    target = make_model("divided", frames=8, size=64)
    state = resize_pos_tables(source.state_dict(), frames=8, size=64)
    target.load_state_dict(state, strict=True)
    # nearest resizing repeats entries: frame pairs share their time embedding
    torch.testing.assert_close(target.time_embed[:, ::2], source.time_embed)


def test_resizing_to_the_same_size_changes_nothing(make_model: MakeModel) -> None:
    source = make_model("divided")
    state = resize_pos_tables(source.state_dict(), frames=4, size=32)
    for key in ("pos_embed", "time_embed"):
        torch.testing.assert_close(state[key], source.state_dict()[key])


def test_on_the_fly_resizing_equals_loading_resized_tables(make_model: MakeModel) -> None:
    source = make_model("joint")
    target = make_model("joint", frames=8, size=64)
    target.load_state_dict(resize_pos_tables(source.state_dict(), frames=8, size=64))
    clip = torch.randn(1, 3, 8, 64, 64)
    torch.testing.assert_close(source(clip), target(clip))


def test_activation_checkpointing_keeps_gradients_and_saves_less() -> None:
    """Same loss and gradients (drop-path included: the RNG state is replayed), and the
    autograd graph keeps far fewer bytes between forward and backward."""
    clip = torch.randn(2, 3, 4, 32, 32)
    grads, saved = {}, {}
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = TimeSformer(frames=4, size=32, dim=64, depth=3, heads=4, drop_path=0.5)
        model.checkpointing = checkpointing
        model.train()
        kept = []

        def pack(tensor: torch.Tensor, kept: list[int] = kept) -> torch.Tensor:
            kept.append(tensor.untyped_storage().nbytes())
            return tensor

        torch.manual_seed(1)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = model(clip).logsumexp(-1).sum()
        loss.backward()
        grads[checkpointing] = [p.grad.clone() for p in model.parameters()]
        saved[checkpointing] = sum(kept)
    for plain, recomputed in zip(grads[False], grads[True], strict=True):
        torch.testing.assert_close(recomputed, plain)
    assert saved[True] < saved[False] / 2


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_more_groups_than_a_fused_kernel_takes_are_attended_in_slices_with_the_same_result(
    attention: str, monkeypatch: pytest.MonkeyPatch, make_model: MakeModel
) -> None:
    """Flash attention's grid caps the SDPA batch at 65,535 groups; a limit of 3 stands in for
    it here (a batch of 4 clips: 4 groups or more per step): same outputs and gradients."""
    model = make_model(attention).train()
    clip = torch.randn(4, 3, 4, 32, 32)

    def outputs_and_gradients() -> list[torch.Tensor]:
        model.zero_grad()
        logits = model(clip)
        logits.logsumexp(-1).sum().backward()
        return [logits.detach(), *(p.grad.clone() for p in model.parameters())]

    whole = outputs_and_gradients()
    batches: list[int] = []
    sdpa = F.scaled_dot_product_attention

    def spy(q: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        batches.append(q.shape[0])
        return sdpa(q, *args)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    monkeypatch.setattr(timesformer, "MAX_SDPA_BATCH", 3, raising=False)
    sliced = outputs_and_gradients()
    assert batches and max(batches) <= 3 and 3 in batches
    for expected, got in zip(whole, sliced, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_inference_without_autograd_gives_the_logits_of_a_graph_building_forward(
    make_model: MakeModel,
) -> None:
    """Without autograd the MLP applies GELU in place; the logits must not change."""
    model = make_model("divided")
    clip = torch.randn(2, 3, 4, 32, 32)
    kept = clip.clone()
    with_graph = model(clip)
    assert with_graph.requires_grad
    with torch.inference_mode():
        torch.testing.assert_close(model(clip), with_graph.detach(), rtol=0, atol=0)
    assert torch.equal(clip, kept)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_every_scheme_compiles_to_one_graph(attention: str, make_model: MakeModel) -> None:
    """`fullgraph=True` fails on any graph break, which would leave `--compile` mostly eager
    (dynamo falls back for a whole frame when a loop breaks)."""
    model = make_model(attention)
    clip = torch.randn(2, 3, 4, 32, 32)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(clip), model(clip))
    torch._dynamo.reset()


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_every_linear_gets_a_contiguous_batch_of_tokens(
    attention: str, make_model: MakeModel
) -> None:
    """A strided (groups, tokens, D) input sends Linear down a batched matmul over a broadcast
    weight: 1.6x slower in fp32 on CPU and a weight copy per group under bf16 autocast. Batch 1
    is the case where the regrouping `reshape` would otherwise return a view."""
    model = make_model(attention)
    strided: list[str] = []

    def check(name: str):
        def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            if inputs[0].ndim > 2 and not inputs[0].is_contiguous():
                strided.append(name)

        return hook

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_pre_hook(check(name))
    with torch.inference_mode():
        model(torch.randn(1, 3, 4, 32, 32))
    assert strided == []


def test_local_global_trains_after_an_inference_pass_of_another_model() -> None:
    """The lattice indices are cached per scheme, not per model: an inference pass must not
    leave inference tensors that a later training pass would have to save for backward."""
    config = dict(attention="local_global", frames=3, size=48, depth=2, dim=64, heads=4)
    with torch.inference_mode():
        TimeSformer(**config).eval()(torch.randn(1, 3, 3, 48, 48))
    model = TimeSformer(**config).train()
    model(torch.randn(1, 3, 3, 48, 48)).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
