"""Rule-based schedules for the fused operators (no search, a few ms per operator).

Per reduction block (conv, depthwise conv, dense, pooling):
- no full padded copy of the input: the padding is computed inside the reduction's read, or,
  for NHWC convolutions over 8+ channels, only the padded rows one output row needs;
- the output-channel axis (innermost spatial axis: NHWC channels, dense columns) goes
  innermost, the reductions outside it, so the inner loop is `acc[c] += x * w[..][c]`, which C
  compilers vectorise; the reduction's init is split off (`decompose_reduction`);
- the elementwise epilogue (bias, residual, activation, requantise) is inlined into one block
  and moved under the producer's pixel loop, so the intermediate shrinks to one pixel's channels.
The `vector` variant also register-tiles convolutions: a block of 2-5 output pixels x 16-32
output channels shares each weight load, and gcc -O3 keeps the accumulators in SSE registers
instead of loading and storing `acc[c]` at every reduction step.
The `scalar` variant also splits the channel axis by a block of 8 and unrolls it (register
blocking for cores without float SIMD such as Cortex-M0/M4/M7). Any rule that does not apply
leaves the operator unscheduled: never wrong code, at worst slower code.
1-D convolutions arrive channels-last (NWC/WIO, pipeline/layout.py) and take the same rules,
their padding copied per kernel tap. Nothing whole is stored inside an operator: operators
without reductions are computed in one loop nest, an epilogue read twice (SiLU) is made one,
a transposed convolution keeps only its padded input.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import tvm
from tvm import s_tir, tirx

from .tir_passes import MAX_STACK_ALLOCA

log = logging.getLogger(__name__)

VARIANTS = ("vector", "scalar", "none")
SCALAR_CORES = ("cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m23", "cortex-m33")
MIN_INNER_EXTENT = 4
PAD_LOOP_DEPTH = 3           # NHWC: the padded rows one output row needs
MIN_ROWS_CHANNELS = 8        # fewer input channels: the inline bounds check costs less
MAX_EPILOGUE_BLOCKS = 8
MAX_TILE_CHANNELS = 64
MIN_TILE_CHANNELS = 8
MAX_RECOMPUTE = 2            # an inlined intermediate: elements its consumer writes per element


@dataclass(frozen=True)
class ScheduleOptions:
    variant: str = "vector"
    padding: str = "auto"           # "auto" | "rows" | "inline" | "copy" (TVM's padded copy)
    channel_block: int = 8          # scalar variant: channels computed per unrolled block


def options_for_target(mcpu: str | None, variant: str | None = None) -> ScheduleOptions:
    """`vector` for hosts and SIMD cores, `scalar` for -mcpu=cortex-m*; `variant` overrides."""
    if variant is None:
        variant = "scalar" if mcpu and mcpu.lower().startswith(SCALAR_CORES) else "vector"
    return ScheduleOptions(variant=variant)


class _NotApplicable(Exception):
    """A rule does not fit this operator; it stays unscheduled."""


def _kinds(sch: s_tir.Schedule, block: object) -> list[str]:
    return ["R" if int(iv.iter_type) == 2 else "S" for iv in sch.get(block).iter_vars]


def _is_reduction(sch: s_tir.Schedule, block: object) -> bool:
    return "R" in _kinds(sch, block)


def _extent(sch: s_tir.Schedule, loop: object) -> int:
    return int(sch.get(loop).extent)


def _padding_producers(sch: s_tir.Schedule, block: object) -> list:
    return [p for p in sch.get_producers(block)
            if not _is_reduction(sch, p) and sch.get(p).name_hint.startswith("pad")]


# TOPI's transposed convolutions store the input dilated by the stride, then padded, and the
# kernel flipped, each whole, before the reduction
TRANSPOSED_INLINED = ("data_dilate", "kernel", "kernel_transform")


def _inline_transposed_inputs(sch: s_tir.Schedule, block: object) -> None:
    """A transposed convolution: the dilation computed inside the padded copy and the
    flipped kernel read through index arithmetic, so one copy is stored instead of three.
    Inlining the padded copy too would put a bounds-and-stride check in the inner loop
    (ConvTranspose1d 16x50 -> 8x100, stride 2, gcc -O3: 5.9 -> 35 us); this way 12,928 ->
    6,592 B of scratch, 5.9 -> 5.5 us (-O2: 6.5 -> 8.6 us)."""
    producers = [p for p in sch.get_producers(block) if not _is_reduction(sch, p)]
    for producer in producers + [q for p in producers for q in sch.get_producers(p)]:
        if sch.get(producer).name_hint in TRANSPOSED_INLINED:
            try:
                sch.compute_inline(producer)
            except (s_tir.ScheduleError, RuntimeError, ValueError):
                pass


def _place_padding(sch: s_tir.Schedule, block: object, row_loop: object | None,
                   options: ScheduleOptions, tap_loop: object | None = None) -> None:
    """No full padded copy of the input: either computed inside the reduction's read
    ("inline", a bounds check in the inner loop) or only the rows one output row needs
    ("rows", a small copy per row, no branch in the inner loop). 1-D convolutions
    (`tap_loop`, the innermost reduction loop): the few input values one kernel tap and input
    channel give the pixel tile, copied to the stack, so the channel loop has no branch and
    gcc -O2 vectorises it too (silero-VAD encoder layer 0 at -O2: 250 -> 40 us)."""
    for producer in _padding_producers(sch, block):
        if tap_loop is not None and options.padding == "auto":
            sch.compute_at(producer, tap_loop)
        elif row_loop is not None and options.padding in ("rows", "auto"):
            sch.compute_at(producer, row_loop)
        else:
            sch.compute_inline(producer)


def _out_shape(sch: s_tir.Schedule, block: object) -> tuple[int, ...] | None:
    writes = sch.get(block).writes
    if len(writes) != 1:
        return None
    source = writes[0].source
    return tuple(int(d) if hasattr(d, "value") or isinstance(d, int) else -1
                 for d in getattr(source, "shape", ()))


def _inline_epilogue_branches(sch: s_tir.Schedule, block: object,
                              shape: tuple[int, ...] | None) -> None:
    """An epilogue that is not a chain (SiLU: `y = a * sigmoid(a)`, a = conv + bias, read by
    both) made one: every intermediate of `block`'s shape after it is inlined into its
    readers, so one block reads the reduction's result. Without it the whole convolution
    output is stored before the epilogue (nudenet at -O3: 3.2 MB of scratch)."""
    frontier, seen = list(sch.get_consumers(block)), []
    while frontier:
        current = frontier.pop(0)
        if (_is_reduction(sch, current) or _out_shape(sch, current) != shape
                or any(sch.get(current).same_as(sch.get(b)) for b in seen)):
            continue
        seen.append(current)
        frontier += sch.get_consumers(current)
    if len(seen) < 2:
        return
    intermediates = list(sch.get(sch.get_sblock("root")).alloc_buffers)
    for current in seen:
        writes = sch.get(current).writes
        if (len(writes) == 1 and sch.get_consumers(current)
                and any(writes[0].source.same_as(b) for b in intermediates)):
            try:
                sch.compute_inline(current)
            except (s_tir.ScheduleError, RuntimeError, ValueError):
                return


def _fuse_epilogue(sch: s_tir.Schedule, block: object) -> object | None:
    """Inline the elementwise chain after `block` into its first consumer; return that block.
    Only blocks that write `block`'s shape: a consumer of another shape (a PAD of the
    channels) placed under the producer's loops would write only the producer's region."""
    shape = _out_shape(sch, block)
    _inline_epilogue_branches(sch, block, shape)
    consumers = sch.get_consumers(block)
    if (len(consumers) != 1 or _is_reduction(sch, consumers[0])
            or _out_shape(sch, consumers[0]) != shape):
        return None
    epilogue = consumers[0]
    for _ in range(MAX_EPILOGUE_BLOCKS):
        following = sch.get_consumers(epilogue)
        if (len(following) != 1 or _is_reduction(sch, following[0])
                or _out_shape(sch, following[0]) != shape):
            break
        sch.reverse_compute_inline(following[0])
    return epilogue


def _read_without(sch: s_tir.Schedule, block: object, axis: int) -> bool:
    """True when some operand of `block` is indexed without its spatial iterator `axis`
    (-1: the output channels, -2: the pixels of a row)."""
    stmt = sch.get(block)
    var = [iv.var for iv in stmt.iter_vars if int(iv.iter_type) == 0][axis]
    return any(all(not any(v.same_as(var) for v in tirx.analysis.undefined_vars(r.min, []))
                   for r in read.region)
               for read in stmt.reads)


# register tiles (pixels P, output channels F), the first that fits. Measured per operator on
# the shared models (gcc -O3, SSE2): 8-16 accumulator vectors kept in registers beat the
# untiled loop by 1.1-5x. Slower, by 1.5-5x: F = 8 (gcc unrolls the channel loop before it
# vectorises it), 2 x 16 over 128 channels (gcc leaves half the accumulators in memory),
# unrolling the pixel block in TIR; slower by 10-60%: P = 5 under kws's 10x4 window, 3 x 32,
# depthwise tiles over 8 channels
TILES = {
    "conv": ((2, 32), (3, 16), (2, 16)),
    "pointwise": ((2, 32), (3, 16), (2, 16), (5, 16)),   # kws, 5 pixels a row: 130 -> 109 us
    "depthwise": ((2, 16), (3, 16)),
}


def _writes_intermediate(sch: s_tir.Schedule, block: object) -> bool:
    """The reduction accumulates into a buffer of its own (an epilogue follows), not into
    the operator's output."""
    writes = sch.get(block).writes
    return len(writes) == 1 and any(writes[0].source.same_as(b) for b in
                                    sch.get(sch.get_sblock("root")).alloc_buffers)


def _divisor_tile(pixels: int, channels: int) -> list[tuple[int, int]]:
    """No tile of TILES divides the channels (silero-VAD's STFT, 258) and one pixel's
    accumulator would go to the workspace's scratch (>= 1 KiB): one pixel at a time,
    the channels split by their largest divisor <= MAX_TILE_CHANNELS, so the accumulator is
    that block, not all the channels (1,032 B of scratch at silero's peak; as fast: 29.6 ->
    31.4 us, noisy host)."""
    if channels * 4 < MAX_STACK_ALLOCA:  # fits the stack, no scratch: all channels innermost
        return []
    divisors = [f for f in range(MAX_TILE_CHANNELS, MIN_TILE_CHANNELS - 1, -1)
                if channels % f == 0]
    return [(1, divisors[0])] if divisors else []


def _register_tile(sch: s_tir.Schedule, spatial: list, reduce: list, kind: str,
                   block: object) -> object | None:
    """Split the pixel axis (the last before the channels) by P and the channels by F, the
    reductions between: `for rc: for p < P: for f < F: acc[p][f] += x[p][rc] * w[rc][f]`, so
    one weight load serves P pixels and gcc keeps `acc` in registers. Returns the loop the
    epilogue goes under, or None (no tile fits; loops unchanged). A convolution with fewer
    than 16 output channels takes them all (vww's first layer, 8 channels: 168 -> 43 us)."""
    channels, pixels = _extent(sch, spatial[-1]), _extent(sch, spatial[-2])
    narrow = kind != "depthwise" and channels < 16
    fits = [(p, f) for p, f in TILES[kind]
            if pixels % p == 0 and (channels % f == 0 or (narrow and f == 16))]
    if not fits:
        fits = _divisor_tile(pixels, channels) if _writes_intermediate(sch, block) else []
    if not fits:
        return None
    p, f = fits[0]
    pixel_outer, pixel_inner = sch.split(spatial[-2], [None, p])
    if f >= channels:
        sch.reorder(*spatial[:-2], pixel_outer, *reduce, pixel_inner, spatial[-1])
        return pixel_outer
    channel_outer, channel_inner = sch.split(spatial[-1], [None, f])
    sch.reorder(*spatial[:-2], pixel_outer, channel_outer, *reduce, pixel_inner, channel_inner)
    return channel_outer


def _schedule_reduction(sch: s_tir.Schedule, block: object, options: ScheduleOptions) -> None:
    kinds = _kinds(sch, block)
    loops = sch.get_loops(block)
    if len(loops) != len(kinds) or "S" not in kinds:
        raise _NotApplicable("loops do not match the block's iterators")
    spatial = [lp for lp, k in zip(loops, kinds) if k == "S"]
    reduce = [lp for lp, k in zip(loops, kinds) if k == "R"]
    inner = spatial[-1]
    if _extent(sch, inner) < MIN_INNER_EXTENT:
        raise _NotApplicable("innermost axis too short to vectorise")
    anchor = spatial[-2] if len(spatial) > 1 else None
    block_inner = None
    factor = options.channel_block
    # rows only where the layout is known: NHWC, whose row axis is spatial[-3]. "auto":
    # measured on the shared models, rows pay for full convolutions over 8+ channels
    # (ic_resnet8 1.40 -> 0.87 ms), the inline bounds check for depthwise convolutions, pooling
    # and the first layers (kws 0.23 -> 0.17 ms)
    nhwc = "nhwc" in sch.get(block).name_hint.lower() and len(spatial) >= 3
    nwc = "nwc" in sch.get(block).name_hint.lower() and len(spatial) == 3  # 1-D
    window = any(_extent(sch, r) > 1 for r in reduce[:-1])  # 1x1: nothing to pad
    full_conv = len(reduce) >= 3 and _extent(sch, reduce[-1]) >= MIN_ROWS_CHANNELS and window
    rows = nhwc and (options.padding == "rows" or (options.padding == "auto" and full_conv))
    tiled = None
    # tiles need an operand the pixels share (weights: not pooling); not with the bounds check
    # of an inline-padded full convolution in the inner loop (ic_resnet8 under the RAM limit:
    # 124 -> 135 us tiled)
    if (options.variant == "vector" and anchor is not None and not (full_conv and not rows)
            and _read_without(sch, block, -2)):
        kind = ("depthwise" if not _read_without(sch, block, -1)  # no operand shared by channels
                else "conv" if window else "pointwise")
        tiled = _register_tile(sch, spatial, reduce, kind, block)
    if tiled is not None:
        anchor = tiled
    elif (options.variant == "scalar" and _extent(sch, inner) > factor
          and _extent(sch, inner) % factor == 0):
        outer, block_inner = sch.split(inner, [None, factor])
        sch.reorder(*spatial[:-1], outer, *reduce, block_inner)
        anchor = outer
    else:
        sch.reorder(*spatial[:-1], *reduce, inner)
    epilogue = _fuse_epilogue(sch, block)
    if epilogue is not None and anchor is not None:
        sch.reverse_compute_at(epilogue, anchor)
    if options.padding != "copy":
        # loops are final now (compute_at breaks their chain)
        _place_padding(sch, block, spatial[-PAD_LOOP_DEPTH] if rows else None, options,
                       reduce[-1] if nwc else None)
    sch.decompose_reduction(block, reduce[0])
    if block_inner is not None:
        sch.unroll(block_inner)


def schedule_function(func: tirx.PrimFunc, options: ScheduleOptions) -> tirx.PrimFunc:
    """The scheduled function, or `func` with its reductions' initialisation split off when
    no rule applies cleanly."""
    if options.variant == "none":
        return decompose_reductions(func)
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    try:
        root = sch.get_sblock("root")
        reductions = [b for b in sch.get_child_blocks(root) if _is_reduction(sch, b)]
        if not reductions:
            return _inline_intermediates(func)
        for block in reductions:
            _inline_transposed_inputs(sch, block)
            _schedule_reduction(sch, block, options)
    except (_NotApplicable, s_tir.ScheduleError, RuntimeError, ValueError) as exc:
        # a rule that does not fit (TVM refuses it) leaves the operator unscheduled; a bug in
        # this file (NameError, TypeError...) still surfaces
        log.debug("operator left unscheduled: %s", str(exc).strip().splitlines()[-1:] or exc)
        return decompose_reductions(func)
    return sch.mod["main"]


def _elements(buffer: tirx.Buffer) -> int | None:
    size = 1
    for dim in buffer.shape:
        if not isinstance(dim, (int, tirx.IntImm)):
            return None
        size *= int(dim)
    return size


def _inline_intermediates(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """An operator without reductions (a fused chain of pads, slices, transposes, casts and
    elementwise maths) computed in one loop nest: every intermediate is inlined into its
    consumers, so none is stored (TVM materialises each one, in the workspace's scratch
    from 1 KiB on: silero-VAD's STFT magnitude 6,192 B). Not where a consumer writes more
    than `MAX_RECOMPUTE` x the intermediate's elements (a broadcast would recompute it)."""
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    root = sch.get_sblock("root")
    intermediates = list(sch.get(root).alloc_buffers)
    for block in sch.get_child_blocks(root):
        writes = sch.get(block).writes
        if len(writes) != 1 or not any(writes[0].source.same_as(b) for b in intermediates):
            continue
        size = _elements(writes[0].source)
        consumers = sch.get_consumers(block)
        if size is None or not consumers or any(
                _elements(sch.get(c).writes[0].source) is None
                or _elements(sch.get(c).writes[0].source) > MAX_RECOMPUTE * size
                for c in consumers):
            continue
        try:
            sch.compute_inline(block)
        except (s_tir.ScheduleError, RuntimeError, ValueError):
            continue
    return sch.mod["main"]


def decompose_reductions(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Each reduction's initialisation as its own loop before the reduction loops. Left in
    the reduction (`if (ry == 0 && rx == 0 && rc == 0) acc = 0;`), gcc -O2 cannot see that a
    one-element accumulator is set before use and -Wmaybe-uninitialized breaks -Werror
    builds (MediaPipe's face_landmark)."""
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    try:
        for block in sch.get_child_blocks(sch.get_sblock("root")):
            kinds = _kinds(sch, block)
            loops = sch.get_loops(block)
            if "R" in kinds and len(loops) == len(kinds):
                sch.decompose_reduction(block, loops[kinds.index("R")])
    except (s_tir.ScheduleError, RuntimeError, ValueError):
        return func
    return sch.mod["main"]


def schedule_operators(relax_mod: tvm.IRModule, options: ScheduleOptions,
                       inline_padding: frozenset[str] = frozenset()) -> tvm.IRModule:
    """Apply the rules to every PrimFunc of a lowered Relax module; the operators named in
    `inline_padding` compute their padding in the read (no scratch at all)."""
    if options.variant == "none":
        return relax_mod
    inline = dataclasses.replace(options, padding="inline")

    def scheduled(gvar: tvm.ir.GlobalVar, func: tirx.PrimFunc) -> tirx.PrimFunc:
        return schedule_function(func, inline if gvar.name_hint in inline_padding else options)

    functions = {gvar: scheduled(gvar, func) if isinstance(func, tirx.PrimFunc) else func
                 for gvar, func in relax_mod.functions.items()}
    # the same GlobalVars, so `main`'s calls still refer to them
    return tvm.IRModule(functions, attrs=relax_mod.attrs)
