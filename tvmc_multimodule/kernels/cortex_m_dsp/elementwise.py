"""The C of the DSP library's int8 ADD and MUL: TFLite Micro's arithmetic with every
multiplier and shift a literal, one SMMULR per doubling high multiply where the operand's
bound allows, broadcasting as a few loops with literal strides."""
from __future__ import annotations

from typing import Sequence

SMALL = 1 << 30  # |x| below this: 2x fits int32, the high multiply is one SMMULR


def broadcast_loops(out_shape: Sequence[int], a_shape: Sequence[int],
                    b_shape: Sequence[int]) -> list[tuple[int, int, int]]:
    """(count, a stride, b stride) per loop, outermost first: numpy broadcasting (shapes
    aligned right, a size-1 dimension reads stride 0), adjacent dimensions merged where both
    operands step through them contiguously (or both stand still)."""
    nd = len(out_shape)

    def strides(shape: Sequence[int]) -> list[int]:
        full = [1] * (nd - len(shape)) + [int(d) for d in shape]
        result, step = [0] * nd, 1
        for i in reversed(range(nd)):
            result[i] = 0 if full[i] == 1 else step
            step *= full[i]
        return result

    sa, sb = strides(a_shape), strides(b_shape)
    loops: list[tuple[int, int, int]] = []
    for n, da, db in zip(out_shape, sa, sb):
        if n == 1:
            continue
        if loops and loops[-1][1] == da * n and loops[-1][2] == db * n:
            loops[-1] = (loops[-1][0] * n, da, db)
        else:
            loops.append((int(n), da, db))
    return loops or [(1, 0, 0)]


def loops_c(loops: list[tuple[int, int, int]], value: str) -> str:
    """Nested loops writing `value` (an expression of va, vb) to *yo++ in output order."""
    depth = len(loops)
    lines = []
    for i, (n, _, _) in enumerate(loops[:-1]):
        lines.append(f"{'  ' * (i + 1)}for (int32_t i{i} = 0; i{i} < {n}; ++i{i}) {{")
    pad = "  " * depth
    outer_a = " + ".join(f"i{i} * {da}" for i, (_, da, _) in enumerate(loops[:-1])) or "0"
    outer_b = " + ".join(f"i{i} * {db}" for i, (_, _, db) in enumerate(loops[:-1])) or "0"
    n, da, db = loops[-1]
    lines += [f"{pad}const int8_t* pa = a + {outer_a};",
              f"{pad}const int8_t* pb = b + {outer_b};",
              f"{pad}for (int32_t k = 0; k < {n}; ++k) {{",
              f"{pad}  int32_t va = pa[k * {da}], vb = pb[k * {db}];",
              f"{pad}  *yo++ = (int8_t)({value});",
              f"{pad}}}"]
    lines += [f"{'  ' * (i + 1)}}}" for i in reversed(range(depth - 1))]
    return "\n".join(lines)


def mbqm(expr: str, bound: int, multiplier: int, shift: int, p: str) -> tuple[str, int]:
    """MultiplyByQuantizedMultiplier(expr, multiplier, shift) as C with literal constants,
    and a bound on the result's magnitude; `bound`: one on |expr|."""
    left, right = max(shift, 0), max(-shift, 0)
    if left:
        expr, bound = f"(int32_t)((uint32_t)({expr}) << {left})", bound << left
    helper = "d_hmul_small" if bound < SMALL else "d_hmul"
    expr = f"{p}{helper}({expr}, {multiplier})"
    bound = (bound * multiplier >> 31) + 1
    if right:
        expr, bound = f"{p}d_rshift({expr}, {right})", (bound >> right) + 1
    return expr, bound


def requantised(expr: str, bound: int, multiplier: tuple[int, int], zero_point: int,
                lo: int, hi: int, p: str) -> str:
    value, _ = mbqm(expr, bound, multiplier[0], multiplier[1], p)
    return f"{p}d_clamp({_minus(value, -zero_point)}, {lo}, {hi})"


def add_value(zero_points: tuple[int, int, int], inputs: tuple[tuple[int, int], ...],
              output: tuple[int, int], lo: int, hi: int, tables: bool, p: str) -> str:
    """reference_integer_ops::Add of va, vb: each (v - zp) << 20 rescaled (from a 256-entry
    table `ta`/`tb` indexed by the uint8 bits, or computed), summed, requantised."""
    if tables:
        # each entry a rescaled (v - zp) << 20 (multiplier < 1, shift <= 0): at most 255 << 20
        terms, bound = "ta[(uint8_t)va] + tb[(uint8_t)vb]", 2 * (255 << 20)
    else:
        parts = [mbqm(f"({_minus(f'v{x}', zp)}) * {1 << 20}", 255 << 20, m, s, p)
                 for x, zp, (m, s) in zip("ab", zero_points[:2], inputs)]
        terms, bound = f"{parts[0][0]} + {parts[1][0]}", parts[0][1] + parts[1][1]
    return requantised(terms, bound, output, zero_points[2], lo, hi, p)


def mul_value(zero_points: tuple[int, int, int], multiplier: tuple[int, int], lo: int,
              hi: int, p: str) -> str:
    """reference_integer_ops::Mul of va, vb: (va - za) * (vb - zb), requantised."""
    za, zb, zo = zero_points
    return requantised(f"({_minus('va', za)}) * ({_minus('vb', zb)})", 255 * 255, multiplier,
                       zo, lo, hi, p)


def _minus(name: str, value: int) -> str:
    return f"{name} - {value}" if value >= 0 else f"{name} + {-value}"
