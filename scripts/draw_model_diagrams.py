"""Draw the block diagrams of xsr's networks for ``docs/explanation/models.md``.

Usage::

    python scripts/draw_model_diagrams.py              # writes docs/img/model-*.svg
    python scripts/draw_model_diagrams.py --out DIR    # somewhere else

Nothing in the diagrams is typed in by hand: every network is built with
:func:`xsr.models.get_model` (default configuration), moved to the ``meta`` device (no memory, no
arithmetic) and run once on a probe input with forward hooks on its layers. The layers drawn,
their kernels and filters, and the tensor shape written under each block are read from that run;
the chains' intermediate tensors come from :meth:`xsr.models.chain.Chain.run_stages`. Only two
steps of a forward pass are not layers and are inferred from the shapes around them: the padding
of the 3D network (its size and mode come from the shapes and ``pad_mode``) and the stacking of
the frames as channels in xsrnet (``window`` frames of ``C`` channels in, ``window * C`` out).

Shapes are written symbolically: ``C`` variables, a low-resolution frame ``H x W`` and a fine one
``sH x sW``. The probe uses sizes chosen so that these symbols cannot be confused (see
:data:`PROBE`). The SVGs keep their text as text (``svg.fonttype: none``) and are byte-for-byte
reproducible (fixed ``svg.hashsalt``, no date, no version string); ``tests/test_diagrams.py``
checks that the committed files are what this script draws.
"""

from __future__ import annotations

import argparse
import copy
import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.textpath import text_to_path
from torch import nn

from xsr.models import SRModel, combination, get_model
from xsr.models.base import BicubicUpsample
from xsr.models.xsrnet import ResidualBlock

__all__ = ["DIAGRAMS", "PROBE", "draw_all", "main"]

OUT_DIR = Path(__file__).resolve().parents[1] / "docs" / "img"

#: Probe sizes: ``channels`` variables, a ``size x size`` low-resolution frame, factor ``scale``.
#: Symbols are recovered from the traced numbers, so the numbers must not collide: 4 is not a
#: kernel size of any default network (so a kernel of 4 can only be the scale), and C = 1,
#: C·s² = 16, 3C and 5C differ from every default filter count (64, 32, 8).
PROBE: dict[str, int] = {"channels": 1, "scale": 4, "size": 12}

#: Largest padding (fine or low pixels) recognised as ``sH+k`` rather than a new size.
_MAX_MARGIN = 8

# -- style ----------------------------------------------------------------------------------------
FIG_WIDTH = 8.8  # inches; every figure has this width, so all render at the same text size
MIN_BOX_W, BOX_H, GAP = 0.8, 0.62, 0.28
CHAIN_LEFT, CHAIN_GAP = 1.75, 0.42  # the chains figure: room for the row names, longer arrows
FILL = {"low": "#d4e4f7", "fine": "#fcdcbc", "io": "#ffffff"}
EDGE, TIME_EDGE, SHAPE_INK = "#3a3a3a", "#1b7a46", "#4a4a4a"
TITLE_PT, DETAIL_PT, SHAPE_PT = 8.5, 7.2, 7.0

RC: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text: small files, searchable, crisp
    "svg.hashsalt": "xsr-model-diagrams",  # deterministic element ids
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial"],
    "figure.dpi": 100,
}
METADATA: dict[str, Any] = {"Date": None, "Creator": "xsr scripts/draw_model_diagrams.py"}


# -- reading the models ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """The probe's sizes, to turn traced numbers back into symbols.

    Parameters
    ----------
    channels : int
        Variables ``C``.
    scale : int
        Upscaling factor ``s``.
    size : int
        Low-resolution frame side ``H = W``.
    window : int
        Frames in.
    """

    channels: int
    scale: int
    size: int
    window: int

    def side(self, n: int, axis: str) -> str:
        """Symbol of a spatial size: ``H``, ``sH``, ``(sH+4)`` ... (``axis`` is ``H`` or ``W``)."""
        for ref, sym in ((self.size * self.scale, f"s{axis}"), (self.size, axis)):
            d = n - ref
            if d == 0:
                return sym
            if 0 < abs(d) <= _MAX_MARGIN:
                return f"({sym}{'+' if d > 0 else '−'}{abs(d)})"
        raise ValueError(f"size {n} is neither the low ({self.size}) nor fine resolution.")

    def resolution(self, n: int) -> str:
        """``"fine"`` or ``"low"``: which grid a spatial size belongs to."""
        return "fine" if abs(n - self.size * self.scale) <= _MAX_MARGIN else "low"

    def chans(self, n: int) -> str:
        """Symbol of a channel count: ``C``, ``C·s²``, ``3C`` or the number."""
        c = self.channels
        if n == c:
            return "C"
        if self.scale > 1 and n == c * self.scale**2:
            return "C·s²"
        if self.window > 1 and n == c * self.window:
            return f"{self.window}C"
        return str(n)

    def shape(self, shape: Sequence[int]) -> str:
        """Symbolic tensor shape without the batch axis, e.g. ``32×5×sH×sW``."""
        _, c, *rest = shape
        *time, h, w = rest
        parts = [self.chans(c), *(str(t) for t in time), self.side(h, "H"), self.side(w, "W")]
        return "×".join(parts)


@dataclass
class Step:
    """One layer call of a traced forward pass."""

    module: nn.Module
    inp: tuple[int, ...]
    out: tuple[int, ...]


_TRACED = (
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose2d,
    nn.PReLU,
    nn.PixelShuffle,
    BicubicUpsample,
    ResidualBlock,
)


def probe_input(model: SRModel, grid: Grid) -> torch.Tensor:
    """A ``meta`` input of the model's rank: ``(1, C, H, W)`` or ``(1, C, window, H, W)``."""
    shape: tuple[int, ...] = (1, model.channels, grid.size, grid.size)
    if model.window > 1:
        shape = (1, model.channels, model.window, grid.size, grid.size)
    return torch.empty(shape, device="meta")


def trace(model: SRModel, grid: Grid) -> tuple[list[Step], tuple[int, ...]]:
    """Run ``model`` once on the ``meta`` device and record its layers in call order.

    Residual blocks are recorded whole (their inner layers are not).

    Parameters
    ----------
    model : SRModel
        The network (left untouched: a copy is traced).
    grid : Grid
        Probe sizes.

    Returns
    -------
    steps : list of Step
        The layer calls, in order, with input and output shapes.
    out : tuple of int
        Shape of the model's output.
    """
    # the model itself: its real layers are drawn (inference rewrites live in xsr.engine.fast)
    probe = copy.deepcopy(model).to("meta").train()
    probe.card = None
    inner = {id(m) for b in probe.modules() if isinstance(b, ResidualBlock) for m in b.modules()}
    inner -= {id(b) for b in probe.modules() if isinstance(b, ResidualBlock)}
    steps: list[Step] = []

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        steps.append(Step(module, tuple(inputs[0].shape), tuple(output.shape)))

    handles = [
        m.register_forward_hook(hook)
        for m in probe.modules()
        if isinstance(m, _TRACED) and id(m) not in inner
    ]
    try:
        with torch.no_grad():
            out = probe(probe_input(probe, grid))
    finally:
        for handle in handles:
            handle.remove()
    return steps, tuple(out.shape)


# -- what is drawn --------------------------------------------------------------------------------
@functools.cache
def text_width(text: str, size: float) -> float:
    """Width in inches of ``text`` in bold at ``size`` points (matplotlib's own font metrics).

    Bold is the widest weight, so the width bounds every line of a box.
    """
    if not text:
        return 0.0
    prop = FontProperties(family=RC["font.sans-serif"][0], size=size, weight="bold")
    width, _, _ = text_to_path.get_text_width_height_descent(text, prop, ismath=False)
    return width / 72


@dataclass
class Block:
    """A box of a diagram.

    Parameters
    ----------
    lines : list of str
        Title, then details (smaller).
    shape : str
        Tensor shape leaving the block (written under it).
    fill : {"low", "fine", "up", "io"}
        Resolution the block works at; ``"up"`` goes from low to fine (split fill).
    temporal : bool
        Mixes frames (drawn with a thick green edge).
    fixed : bool
        No weights (dashed edge).
    centre : tuple of float
        Where it was drawn, in inches (set by :func:`draw_block`).
    """

    lines: list[str]
    shape: str = ""
    fill: str = "low"
    temporal: bool = False
    fixed: bool = False
    centre: tuple[float, float] = (0.0, 0.0)

    @property
    def width(self) -> float:
        """Box width in inches: room for its longest line and for the shape written under it."""
        title, *details = self.lines
        text = max([text_width(title, TITLE_PT), *(text_width(d, DETAIL_PT) for d in details)])
        return max(MIN_BOX_W, text + 0.2, text_width(self.shape, SHAPE_PT) + 0.02)

    def add_activation(self, name: str) -> None:
        """Append an activation to the last line (or to a new line if that one is long)."""
        joined = f"{self.lines[-1]}, {name}"
        if len(self.lines) > 1 and len(joined) <= 18:
            self.lines[-1] = joined
        else:
            self.lines.append(name)


def _kernel(k: Sequence[int]) -> str:
    return "×".join(str(n) for n in k)


def _fill(step: Step, grid: Grid) -> str:
    before, after = grid.resolution(step.inp[-1]), grid.resolution(step.out[-1])
    return "up" if (before, after) == ("low", "fine") else after


def describe(step: Step, grid: Grid) -> Block:
    """The block of one traced layer (kernel, filters, what it does to the shape).

    Parameters
    ----------
    step : Step
        The layer call.
    grid : Grid
        Probe sizes.

    Returns
    -------
    Block
        Its box.
    """
    m, shape, fill = step.module, grid.shape(step.out), _fill(step, grid)
    if isinstance(m, BicubicUpsample):
        return Block(["bicubic", "×s"], shape, fill, fixed=True)
    if isinstance(m, nn.PixelShuffle):
        return Block(["pixel shuffle", "×s"], shape, fill, fixed=True)
    if isinstance(m, ResidualBlock):
        k1, f1 = _kernel(m.conv1.kernel_size), grid.chans(m.conv1.out_channels)
        k2, f2 = _kernel(m.conv2.kernel_size), grid.chans(m.conv2.out_channels)
        act = type(m.act).__name__
        return Block(
            ["residual block", f"{k1} conv {f1}, {act},", f"{k2} conv {f2}, + skip"], shape
        )
    filters = f"{grid.chans(m.out_channels)} filters"
    if isinstance(m, nn.ConvTranspose2d):
        s = (grid.scale, grid.scale)
        k = "s×s" if m.kernel_size == s else _kernel(m.kernel_size)
        stride = "s" if m.stride == s else _kernel(m.stride)
        return Block(["transposed conv", f"{k}, stride {stride}", filters], shape, fill)
    if isinstance(m, nn.Conv3d):
        t_in, t_out = step.inp[2], step.out[2]
        valid = m.padding == (0, 0, 0) and max(m.kernel_size) > 1
        lines = [f"3D conv {_kernel(m.kernel_size)}", f"{filters}, {'valid' if valid else 'same'}"]
        if t_in != t_out:
            lines.append(f"{t_in}→{t_out} frames")
        return Block(lines, shape, fill, temporal=m.kernel_size[0] > 1)
    if isinstance(m, nn.Conv2d):
        # Fed the window's frames stacked as channels (xsrnet's early fusion): mixes time.
        fused = grid.window > 1 and m.in_channels == grid.channels * grid.window
        return Block([f"conv {_kernel(m.kernel_size)}", filters], shape, fill, temporal=fused)
    raise TypeError(f"no drawing for {type(m).__name__}")


def blocks_of(
    steps: Sequence[Step], grid: Grid, model: SRModel, inp: tuple[int, ...]
) -> list[Block]:
    """Blocks of a traced layer sequence, with the steps between layers made explicit.

    A PReLU joins the block before it; repeated residual blocks become one ``N ×`` block; a
    spatial padding or a stacking of frames as channels between two layers becomes a block.

    Parameters
    ----------
    steps : sequence of Step
        Consecutive layer calls (each fed by the previous one).
    grid : Grid
        Probe sizes.
    model : SRModel
        The traced model (for ``pad_mode``).
    inp : tuple of int
        Shape of the tensor entering the sequence (the model's input).

    Returns
    -------
    list of Block
        In order.
    """
    blocks: list[Block] = []
    previous: Step | None = None
    shape = inp
    repeats = 1
    for step in steps:
        if isinstance(step.module, nn.PReLU):
            blocks[-1].add_activation(type(step.module).__name__)
        elif isinstance(step.module, ResidualBlock) and isinstance(
            getattr(previous, "module", None), ResidualBlock
        ):
            repeats += 1
            blocks[-1].lines[0] = f"{repeats} × residual block"
        else:
            if shape != step.inp:
                between = between_block(shape, step.inp, grid, model)
                blocks += [between] if between is not None else []
            repeats = 1
            blocks.append(describe(step, grid))
        previous, shape = step, step.out
    return blocks


def between_block(
    before: tuple[int, ...], after: tuple[int, ...], grid: Grid, model: SRModel
) -> Block | None:
    """The step, not a layer, that turns a tensor of shape ``before`` into ``after``.

    Parameters
    ----------
    before, after : tuple of int
        Shapes of the tensor leaving one layer and of the one entering the next.
    grid : Grid
        Probe sizes.
    model : SRModel
        The traced model (for ``pad_mode``).

    Returns
    -------
    Block or None
        A padding or a stacking of frames as channels; ``None`` for dropping a time axis of
        length 1 (nothing to draw: the shape labels show it).
    """
    shape, res = grid.shape(after), grid.resolution(after[-1])
    if len(before) == 5 and before[2] == 1 and after == before[:2] + before[3:]:
        return None
    if len(before) == len(after) and before[:-2] == after[:-2]:
        margin = (after[-1] - before[-1]) // 2
        mode = getattr(model, "pad_mode", "zeros")
        return Block([f"pad by {margin}", mode], shape, res, fixed=True)
    if len(before) == 5 and len(after) == 4 and after[1] == before[1] * before[2]:
        return Block(["stack frames", "as channels"], shape, res, fixed=True)
    raise ValueError(f"cannot describe the step from {before} to {after}")


def family_blocks(model: SRModel) -> list[Block]:
    """Input box, layer blocks and output box of a single network.

    Parameters
    ----------
    model : SRModel
        A network built with the probe's ``channels`` and ``scale``.

    Returns
    -------
    list of Block
        In order.
    """
    grid = Grid(model.channels, model.scale, PROBE["size"], model.window)
    steps, out = trace(model, grid)
    inp = tuple(probe_input(model, grid).shape)
    return [
        Block(["input"], grid.shape(inp), "io"),
        *blocks_of(steps, grid, model, inp),
        Block(["output"], grid.shape(out), "io"),
    ]


# -- drawing --------------------------------------------------------------------------------------
def canvas(height: float) -> tuple[Figure, Axes]:
    """A white figure ``FIG_WIDTH`` x ``height`` inches whose data units are inches."""
    fig = plt.figure(figsize=(FIG_WIDTH, height))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0.0, FIG_WIDTH)
    ax.set_ylim(0.0, height)
    ax.set_axis_off()
    return fig, ax


def _edge(block: Block) -> dict[str, Any]:
    edge, lw = (TIME_EDGE, 2.2) if block.temporal else (EDGE, 0.9)
    style = (0, (3.0, 2.0)) if block.fixed else "solid"
    return {"edgecolor": edge, "linewidth": lw, "linestyle": style}


def _split_fill(ax: Axes, clip: Any, x: float, y: float, w: float, h: float) -> None:
    """Low-resolution colour on the left half, fine on the right, clipped to ``clip``."""
    for x0, key in ((x, "low"), (x + w / 2, "fine")):
        half = Rectangle((x0, y), w / 2, h, facecolor=FILL[key], edgecolor="none", zorder=2)
        ax.add_patch(half)
        half.set_clip_path(clip)


def draw_block(ax: Axes, block: Block, cx: float, cy: float) -> None:
    """Draw ``block`` centred at ``(cx, cy)`` (inches), its shape written under it."""
    block.centre = (cx, cy)
    w, h = block.width, BOX_H
    x, y = cx - w / 2, cy - h / 2
    box = FancyBboxPatch(
        (x, y), w, h, boxstyle="round,pad=0,rounding_size=0.07", zorder=3,
        facecolor="none" if block.fill == "up" else FILL[block.fill], **_edge(block),
    )  # fmt: skip
    ax.add_patch(box)
    if block.fill == "up":
        _split_fill(ax, box, x, y, w, h)
    heights = [TITLE_PT / 72 * 1.35] + [DETAIL_PT / 72 * 1.3] * (len(block.lines) - 1)
    top = cy + sum(heights) / 2
    for i, (text, line_h) in enumerate(zip(block.lines, heights)):
        top -= line_h
        ax.text(
            cx, top + line_h * 0.5, text, ha="center", va="center_baseline", zorder=4,
            fontsize=TITLE_PT if i == 0 else DETAIL_PT,
            fontweight="bold" if i == 0 and block.fill != "io" else "normal",
        )  # fmt: skip
    if block.shape:
        ax.text(cx, y - 0.05, block.shape, ha="center", va="top", fontsize=SHAPE_PT,
                color=SHAPE_INK, zorder=4)  # fmt: skip


def arrow(ax: Axes, points: Sequence[tuple[float, float]]) -> None:
    """A polyline arrow through ``points`` (inches), head at the last one."""
    codes = [MplPath.MOVETO] + [MplPath.LINETO] * (len(points) - 1)
    ax.add_patch(
        FancyArrowPatch(
            path=MplPath(points, codes), arrowstyle="-|>,head_length=5,head_width=2.6",
            color=EDGE, linewidth=1.0, shrinkA=0, shrinkB=0, zorder=1,
        )
    )  # fmt: skip


def connect(ax: Axes, a: Block, b: Block, *, drop: float = 0.0) -> None:
    """Arrow from ``a`` to ``b``; to a block on a lower row, go down then back left.

    ``drop`` is how far below ``a``'s centre the return runs (under its shape label).
    """
    (ax_, ay), (bx, by) = a.centre, b.centre
    start, end = (ax_ + a.width / 2, ay), (bx - b.width / 2, by)
    if math.isclose(ay, by):
        arrow(ax, [start, end])
        return
    out_x, in_x, turn = start[0] + GAP / 2, end[0] - GAP / 2, ay - drop
    arrow(ax, [start, (out_x, ay), (out_x, turn), (in_x, turn), (in_x, by), end])


def row_width(blocks: Sequence[Block], gap: float = GAP) -> float:
    """Width in inches of ``blocks`` side by side."""
    return sum(b.width for b in blocks) + gap * (len(blocks) - 1)


def split_rows(blocks: Sequence[Block], room: float) -> list[list[Block]]:
    """Fewest rows whose widths fit in ``room`` inches.

    Two rows break before the first upsampling block when both halves fit (the low-resolution
    part above, the fine part below); otherwise the rows are of (nearly) equal length.

    Parameters
    ----------
    blocks : sequence of Block
        The pipeline, in order.
    room : float
        Widest row allowed, in inches.

    Returns
    -------
    list of list of Block
        The rows.
    """
    if row_width(blocks) <= room:
        return [list(blocks)]
    up = next((i for i, b in enumerate(blocks) if b.fill == "up"), 0)
    if up > 1 and row_width(blocks[:up]) <= room and row_width(blocks[up:]) <= room:
        return [list(blocks[:up]), list(blocks[up:])]
    for n_rows in range(1, len(blocks) + 1):
        per_row = math.ceil(len(blocks) / n_rows)
        rows = [list(blocks[i : i + per_row]) for i in range(0, len(blocks), per_row)]
        if all(row_width(row) <= room for row in rows):
            return rows
    raise ValueError(f"a block is wider than {room} inches")


def draw_rows(ax: Axes, rows: Sequence[Sequence[Block]], top: float, pitch: float) -> None:
    """Draw rows of blocks left-aligned and centred as a whole, and connect them in order."""
    x0 = (FIG_WIDTH - max(row_width(row) for row in rows)) / 2
    for r, row in enumerate(rows):
        x = x0
        for block in row:
            draw_block(ax, block, x + block.width / 2, top - BOX_H / 2 - r * pitch)
            x += block.width + GAP
    flat = [block for row in rows for block in row]
    for a, b in itertools.pairwise(flat):
        connect(ax, a, b, drop=pitch / 2)


def legend(ax: Axes, blocks: Sequence[Block], y: float) -> None:
    """A one-line legend of the styles that ``blocks`` use, centred at height ``y``."""
    fills = {b.fill for b in blocks}
    entries: list[tuple[Block, str]] = []
    if fills & {"low", "up"}:
        entries.append((Block([""], fill="low"), "low resolution (H×W)"))
    if fills & {"fine", "up"}:
        entries.append((Block([""], fill="fine"), "fine resolution (sH×sW)"))
    if "up" in fills:
        entries.append((Block([""], fill="up"), "upsampling (low → fine)"))
    if any(b.temporal for b in blocks):
        entries.append((Block([""], fill="io", temporal=True), "mixes frames (time)"))
    if any(b.fixed for b in blocks):
        entries.append((Block([""], fill="io", fixed=True), "no weights"))
    swatch, h, pad, sep = 0.3, 0.17, 0.07, 0.28
    widths = [swatch + pad + text_width(text, DETAIL_PT) for _, text in entries]
    x = (FIG_WIDTH - sum(widths) - sep * (len(entries) - 1)) / 2
    for (block, text), w in zip(entries, widths):
        face = "none" if block.fill == "up" else FILL[block.fill]
        box = Rectangle((x, y - h / 2), swatch, h, facecolor=face, zorder=3, **_edge(block))
        ax.add_patch(box)
        if block.fill == "up":
            _split_fill(ax, box, x, y - h / 2, swatch, h)
        ax.text(x + swatch + pad, y, text, ha="left", va="center_baseline", fontsize=DETAIL_PT)
        x += w + sep


def heading(ax: Axes, text: str, y: float) -> None:
    """Figure title at the top left."""
    ax.text(0.12, y, text, ha="left", va="center_baseline", fontsize=9.5, fontweight="bold")


# -- the five figures -----------------------------------------------------------------------------
ROW_PITCH = BOX_H + 0.62  # between wrapped rows: room for the shape labels and the return arrow


def family_figure(model: SRModel, text: str) -> Figure:
    """One network as a pipeline of blocks, wrapped into rows, with its legend.

    Parameters
    ----------
    model : SRModel
        The network (traced on the ``meta`` device).
    text : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The drawing.
    """
    blocks = family_blocks(model)
    rows = split_rows(blocks, FIG_WIDTH - 0.3)
    height = 0.42 + BOX_H + (len(rows) - 1) * ROW_PITCH + 0.72
    fig, ax = canvas(height)
    heading(ax, text, height - 0.2)
    draw_rows(ax, rows, height - 0.42, ROW_PITCH)
    legend(ax, blocks, 0.2)
    return fig


def _model(arch: str, **config: Any) -> SRModel:
    return get_model(arch, scale=PROBE["scale"], channels=PROBE["channels"], **config)


def srcnn_figure() -> Figure:
    """SRCNN as the report builds it (bicubic pre-upsampling, three convolutions)."""
    return family_figure(_model("srcnn"), "srcnn  (the report's SRCNN; default configuration)")


def fsrcnn_figure() -> Figure:
    """FSRCNN, the report's variant: features at low resolution, a transposed convolution."""
    return family_figure(
        _model("fsrcnn", variant="report"), 'fsrcnn  (the report\'s variant, variant="report")'
    )


def srnet3d_figure() -> Figure:
    """The report's 3D network on a bicubic-upsampled window of frames."""
    model = _model("srnet3d")
    text = f"srnet3d  (the report's 3D SRnet: {model.window} frames in, 1 out; kernels t×y×x)"
    return family_figure(model, text)


def xsrnet_figure() -> Figure:
    """xsrnet: early fusion at low resolution, sub-pixel output, global bicubic residual."""
    model = _model("xsrnet")
    grid = Grid(model.channels, model.scale, PROBE["size"], model.window)
    steps, out = trace(model, grid)
    (skip,) = [s for s in steps if isinstance(s.module, BicubicUpsample)]
    inp = tuple(probe_input(model, grid).shape)
    main_path = [s for s in steps if s is not skip]
    blocks = [Block(["input"], grid.shape(inp), "io"), *blocks_of(main_path, grid, model, inp)]
    centre = Block(
        ["centre frame", f"frame {model.time_radius + 1} of {model.window}"],
        grid.shape(skip.inp), "low", fixed=True,
    )  # fmt: skip
    branch = [centre, describe(skip, grid)]
    plus_r = 0.15
    if row_width(blocks) + GAP + 2 * plus_r > FIG_WIDTH - 0.3:
        raise ValueError("xsrnet's main path no longer fits on one row")

    height = 3.0
    fig, ax = canvas(height)
    heading(ax, f"xsrnet  (xsr's own network; {model.window}-frame window)", height - 0.2)
    row_y = height - 0.42 - BOX_H / 2
    x = (FIG_WIDTH - row_width(blocks) - GAP - 2 * plus_r) / 2
    for block in blocks:
        draw_block(ax, block, x + block.width / 2, row_y)
        x += block.width + GAP
    for a, b in itertools.pairwise(blocks):
        connect(ax, a, b)
    plus = (x + plus_r, row_y)
    ax.add_patch(Circle(plus, plus_r, facecolor="white", edgecolor=EDGE, linewidth=0.9, zorder=3))
    ax.text(*plus, "+", ha="center", va="center", fontsize=12, zorder=4)
    last = blocks[-1]
    arrow(ax, [(last.centre[0] + last.width / 2, row_y), (plus[0] - plus_r, row_y)])
    ax.text(plus[0], row_y + plus_r + 0.2, "output", ha="center", va="bottom",
            fontsize=DETAIL_PT)  # fmt: skip
    ax.text(plus[0], row_y + plus_r + 0.05, grid.shape(out), ha="center", va="bottom",
            fontsize=SHAPE_PT, color=SHAPE_INK)  # fmt: skip
    # The skip branch, under the main row: a fork after the input -> centre frame -> bicubic
    # -> up into the sum.
    branch_y = row_y - BOX_H - 0.45
    draw_block(ax, branch[0], blocks[2].centre[0], branch_y)
    draw_block(ax, branch[1], blocks[-1].centre[0], branch_y)
    fork = (blocks[0].centre[0] + blocks[0].width / 2 + GAP / 2, row_y)
    ax.add_patch(Circle(fork, 0.03, facecolor=EDGE, edgecolor="none", zorder=2))
    arrow(ax, [fork, (fork[0], branch_y), (branch[0].centre[0] - branch[0].width / 2, branch_y)])
    connect(ax, branch[0], branch[1])
    right = branch[1].centre[0] + branch[1].width / 2
    arrow(ax, [(right, branch_y), (plus[0], branch_y), (plus[0], row_y - plus_r)])
    legend(ax, [*blocks, *branch], 0.2)
    return fig


#: Rows of the chains figure: (name, subtitle, combination kind, trained end to end).
CHAINS: list[tuple[str, str, str, bool]] = [
    ("2D then 3D", "the report's two-stage\nmethod: trained\nstage by stage", "2d+3d", False),
    ("3D then 2D", "the 3D stage refines\nat low resolution", "3d+2d", False),
    ("two-in-one", "2D then 3D as one\nnetwork, trained\nend to end", "2d+3d", True),
]

_NAMES = {"srcnn": "SRCNN", "fsrcnn": "FSRCNN", "srnet3d": "3D SRnet", "xsrnet": "xsrnet"}


def stage_block(
    stage: SRModel, before: tuple[int, ...], after: tuple[int, ...], grid: Grid
) -> Block:
    """The box of one stage of a chain, from its model and the movies before and after it.

    Parameters
    ----------
    stage : SRModel
        The stage.
    before, after : tuple of int
        Shapes ``(N, C, T, H, W)`` of the movie fed to the stage and of its result.
    grid : Grid
        The chain's probe sizes.

    Returns
    -------
    Block
        Its box.
    """
    name = _NAMES.get(stage.arch, stage.arch)
    if stage.config.get("variant"):
        name += f" ({stage.config['variant']})"
    res_in, res_out = grid.resolution(before[-1]), grid.resolution(after[-1])
    fill = "up" if (res_in, res_out) == ("low", "fine") else res_out
    scale = "×s" if stage.scale > 1 else "scale 1"
    if stage.window == 1:
        how = [f"2D, {scale}"] + (["on each frame"] if before[2] > 1 else [])
    else:
        how = [f"3D, {scale}", f"{before[2]}→{after[2]} frames"]
    return Block([name, *how], grid.shape(after), fill, temporal=stage.window > 1)


def chain_figure() -> Figure:
    """The report's combinations, one per row, built by :func:`xsr.models.combination`."""
    pitch = BOX_H + 0.78
    height = 0.42 + BOX_H + 2 * pitch + 0.72
    fig, ax = canvas(height)
    heading(ax, 'chains  (get_model("chain", stages=combination(kind, scale=s)))', height - 0.2)
    drawn: list[Block] = []
    for r, (name, subtitle, kind, joint) in enumerate(CHAINS):
        chain = get_model(
            "chain", stages=combination(kind, scale=PROBE["scale"], channels=PROBE["channels"])
        )
        grid = Grid(chain.channels, chain.scale, PROBE["size"], chain.window)
        probe = copy.deepcopy(chain).to("meta")
        x = probe_input(probe, grid)
        with torch.no_grad():
            movies = [tuple(probe.run_stages(x, k).shape) for k in range(len(probe.stages) + 1)]
            out = tuple(probe(x).shape)
        blocks = [Block(["input"], grid.shape(movies[0]), "io")]
        blocks += [
            stage_block(st, a, b, grid) for st, a, b in zip(chain.stages, movies, movies[1:])
        ]
        blocks.append(Block(["output"], grid.shape(out), "io"))
        y = height - 0.42 - BOX_H / 2 - r * pitch
        ax.text(0.12, y + 0.2, name, ha="left", va="center_baseline", fontsize=TITLE_PT,
                fontweight="bold")  # fmt: skip
        ax.text(0.12, y + 0.08, subtitle, ha="left", va="top", fontsize=DETAIL_PT,
                linespacing=1.25, color=SHAPE_INK)  # fmt: skip
        x0 = CHAIN_LEFT
        for block in blocks:
            draw_block(ax, block, x0 + block.width / 2, y)
            x0 += block.width + CHAIN_GAP
        for a, b in itertools.pairwise(blocks):
            connect(ax, a, b)
        if joint:  # one network: a dashed frame around the stages and their outputs
            left = blocks[1].centre[0] - blocks[1].width / 2 - 0.1
            right = blocks[-2].centre[0] + blocks[-2].width / 2 + 0.1
            bottom, top = y - BOX_H / 2 - 0.27, y + BOX_H / 2 + 0.08
            ax.add_patch(
                FancyBboxPatch(
                    (left, bottom), right - left, top - bottom,
                    boxstyle="round,pad=0,rounding_size=0.1", facecolor="none",
                    edgecolor=EDGE, linewidth=0.9, linestyle=(0, (5.0, 3.0)), zorder=1,
                )
            )  # fmt: skip
        drawn += blocks
    legend(ax, drawn, 0.2)
    return fig


#: File name -> function drawing it.
DIAGRAMS: dict[str, Any] = {
    "model-srcnn.svg": srcnn_figure,
    "model-fsrcnn.svg": fsrcnn_figure,
    "model-srnet3d.svg": srnet3d_figure,
    "model-chains.svg": chain_figure,
    "model-xsrnet.svg": xsrnet_figure,
}


def draw_all(out_dir: Path | str = OUT_DIR) -> list[Path]:
    """Draw every diagram into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like, default docs/img
        Where the SVG files go (created if missing).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context(RC):
        for name, draw in DIAGRAMS.items():
            fig = draw()
            path = out_dir / name
            title = f"xsr model diagram: {name.removeprefix('model-').removesuffix('.svg')}"
            fig.savefig(path, format="svg", metadata={**METADATA, "Title": title})
            plt.close(fig)
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """Command line: draw the diagrams (into ``docs/img`` unless ``--out`` is given).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (docs/img)")
    args = parser.parse_args(argv)
    written = draw_all(args.out)
    for path in written:
        print(f"{path}  ({path.stat().st_size / 1000:.1f} kB)")
    return written


if __name__ == "__main__":
    main()
