"""Instructions per inference of our C on an emulated Cortex-M4F (QEMU mps2-an386).

    python bench/cortex_m.py [--models FILE ...] [--repeat N]

QEMU is not cycle-accurate, but with `-icount shift=0` its virtual clock advances 1 ns per
executed instruction, and the board's 25 MHz CMSDK timer then ticks once per 40 instructions:
the firmware reads it around the model's `run`, so the figure is an instruction count
(deterministic, +-40), good for comparing schedule variants and int8 against float on the
same core, not a latency. Each model is compiled with `-mcpu=cortex-m4` in both schedule
variants (scalar, the default there, and vector) and built with arm-none-eabi-gcc -O2.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "tests" / "cortex_m"  # startup code and linker script of the QEMU tests
SHARED = REPO.parent / "shared" / "models" / "tflite"
DEFAULT_MODELS = [SHARED / f"{m}_{k}.tflite" for m in
                  ("kws_dscnn", "vww_mobilenet_v1_025", "ic_resnet8", "ad_autoencoder")
                  for k in ("int8", "float32")]
CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2"]
INSTRUCTIONS_PER_TICK = 40  # 1 GHz virtual clock (icount shift 0) / 25 MHz timer

_MAIN = """#include <stdio.h>
#include <stdint.h>
#include "tvmgen_{name}.h"
#define TIMER ((volatile uint32_t*)0x40002000u)  /* CMSDK dual timer 1: load, value, control */
{buffers}
int main(void) {{
  struct tvmgen_{name}_inputs in;
  struct tvmgen_{name}_outputs out;
  uint32_t start, stop;
{bind}
  TIMER[0] = 0xFFFFFFFFu;
  TIMER[2] = (1u << 7) | (1u << 1);  /* enabled, 32-bit, free running */
  if (tvmgen_{name}_run(&in, &out) != 0) return 1;  /* warm-up */
  start = TIMER[1];
  for (int i = 0; i < {repeat}; ++i) {{
    if (tvmgen_{name}_run(&in, &out) != 0) return 1;
  }}
  stop = TIMER[1];
  printf("ticks %lu\\n", (unsigned long)(start - stop));
  return 0;
}}
"""


def firmware_main(module: object, repeat: int) -> str:
    buffers, bind = [], []
    for kind, tensors in (("in", module.inputs), ("out", module.outputs)):  # type: ignore[attr-defined]
        for i, t in enumerate(tensors):
            buffers.append(f"static _Alignas(16) uint8_t {kind}{i}[{max(t.nbytes, 1)}];")
            bind.append(f"  {kind}.{t.c_name} = {kind}{i};")
    return _MAIN.format(name=module.name, buffers="\n".join(buffers),  # type: ignore[attr-defined]
                        bind="\n".join(bind), repeat=repeat)


def instructions(path: Path, schedule: str, repeat: int, work: Path) -> tuple[float, int]:
    """(instructions per inference, .text bytes of the firmware)."""
    from tvmc_multimodule import compile_model, export_model_library_format

    name = "m"
    module = compile_model(str(path), module_name=name, target="c -mcpu=cortex-m4",
                           schedule=schedule)
    archive = export_model_library_format(module, str(work / "m.tar"))
    root = work / "mlf"
    root.mkdir(exist_ok=True)
    subprocess.run(["tar", "xf", archive, "-C", str(root)], check=True)
    (work / "main.c").write_text(firmware_main(module, repeat))
    sources = sorted((root / "codegen" / "host" / "src").glob(f"{name}_lib*.c"))
    elf = work / "app.elf"
    subprocess.run(["arm-none-eabi-gcc", *CFLAGS, "-I", str(root / "codegen" / "host" / "include"),
                    str(FIRMWARE / "startup.c"), str(work / "main.c"), *map(str, sources),
                    "-T", str(FIRMWARE / "link.ld"), "--specs=rdimon.specs", "-nostartfiles",
                    "-lm", "-o", str(elf)], check=True, capture_output=True, text=True)
    run = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-icount",
                          "shift=0", "-semihosting-config", "enable=on,target=native",
                          "-kernel", str(elf)], capture_output=True, text=True, timeout=600)
    if run.returncode != 0 or "ticks" not in run.stdout:
        raise RuntimeError(f"firmware failed: {run.stdout[-300:]} {run.stderr[-300:]}")
    ticks = int(run.stdout.split("ticks", 1)[1].split()[0])
    size = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True,
                          text=True).stdout
    text = next(int(line.split()[1]) for line in size.splitlines() if line.startswith(".text"))
    return ticks * INSTRUCTIONS_PER_TICK / repeat, text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", type=Path, default=DEFAULT_MODELS)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs after one warm-up")
    args = parser.parse_args(argv)
    print(f"{'model':34s} {'scalar Minstr':>14s} {'vector Minstr':>14s} {'vector/scalar':>14s}")
    for path in args.models:
        if not path.exists():
            print(f"{path.name}: missing", file=sys.stderr)
            continue
        counts = {}
        for schedule in ("scalar", "vector"):
            with tempfile.TemporaryDirectory(prefix="tvmc-m4-") as tmp:
                counts[schedule], _ = instructions(path, schedule, args.repeat, Path(tmp))
        print(f"{path.stem:34s} {counts['scalar'] / 1e6:14.3f} {counts['vector'] / 1e6:14.3f} "
              f"{counts['vector'] / counts['scalar']:14.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
