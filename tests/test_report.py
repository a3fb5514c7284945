"""`tvmc report`: the layer tables and memory plans an archive carries, as text and as an HTML
page rendered by a real headless browser (Debian's chromium)."""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from builders import onnx_models, tflite_int8_models
from tvmc_cli import NO_PLUGINS, tvmc
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli import driver
from tvmc_multimodule.errors import OutputError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
# 1x3x8x8 input, 4 output channels, 3x3 kernel, padding 1: 8*8*4 outputs x 27 taps
CONV_MACS = 8 * 8 * 4 * 27


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    onnx_models.save(onnx_models.conv2d(), folder / "conv.onnx")
    (folder / "fc.tflite").write_bytes(tflite_int8_models.fully_connected())
    out = folder / "models.tar"
    assert driver.main(["compile-multi", f"{folder / 'conv.onnx'}:conv",
                        f"{folder / 'fc.tflite'}:fc", "-j", "1", "-o", str(out)],
                       entry_point_loader=NO_PLUGINS) == 0
    return out


def test_archive_carries_layers_and_plan(archive):
    modules = load_model_library_format(str(archive)).modules
    conv = modules["conv"]
    assert [layer.macs for layer in conv.layers if "conv2d" in layer.op] == [CONV_MACS]
    assert conv.memory_layout is not None
    assert conv.memory_layout.workspace_bytes == conv.workspace_size_bytes
    assert max(conv.memory_layout.live_bytes) == conv.liveness_bound_bytes
    fc = modules["fc"]
    # int8: x[2,24] -> 16 units -> 10 units
    assert [layer.macs for layer in fc.layers if layer.macs] == [2 * 24 * 16, 2 * 16 * 10]
    assert fc.layers[0].weight_bytes >= 16 * 24  # int8 weights (+ bias, multipliers)


def test_text_report(capsys, archive):
    code, out, err = tvmc(capsys, "report", str(archive))
    assert code == 0, err
    assert re.search(r"^conv\s+conv\.onnx\s+onnx\s+\d+\s+" + str(CONV_MACS), out, re.M)
    assert "arena: one shared arena (MAX)" in out and "memory plan of fc:" in out
    # the layer column: the model's names (conv's unnamed nodes: the output they write)
    assert re.search(r"^\s+1\s+conv_out\s+conv2d_add_relu\s", out, re.M), out
    assert re.search(r"^\s+1\s+y\s+fully_connected\s", out, re.M), out


def test_profile_adds_instructions(capsys, archive, tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"fc": {"0": 1234, "1": 567}}))
    code, out, _ = tvmc(capsys, "report", str(archive), "--profile", str(profile))
    assert code == 0 and "instructions" in out and "1234" in out
    profile.write_text(json.dumps({"nope": {"0": 1}}))
    code, _, err = tvmc(capsys, "report", str(archive), "--profile", str(profile))
    assert code == 2 and "not in the archive: nope" in err


def _tampered(archive: Path, tmp_path: Path, change) -> Path:
    root = tmp_path / "x"
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    meta_path = root / "metadata.json"
    meta = json.loads(meta_path.read_text())
    change(meta["modules"]["conv"])
    meta_path.write_text(json.dumps(meta))
    return root


@pytest.mark.parametrize("change, message", [
    (lambda m: m["memory_plan"]["buffers"][0].update(offset=-4), "offset must be an integer"),
    (lambda m: m["memory_plan"]["buffers"][0].update(size=1 << 30), "size must be"),
    (lambda m: m["layers"][0].update(function_name="<script>"), "not a valid name"),
    (lambda m: m["memory_plan"].update(live_bytes=[1]), "entries for"),
    (lambda m: m["layers"][0].update(macs="many"), "macs must be an integer"),
])
def test_malformed_analysis_is_refused(capsys, archive, tmp_path, change, message):
    root = _tampered(archive, tmp_path, change)
    with pytest.raises(OutputError) as info:
        load_model_library_format(str(root))
    assert message in info.value.one_line() and "conv" in info.value.one_line()
    code, _, err = tvmc(capsys, "report", str(root))
    assert code == 5 and "malformed" in err


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes], int]:
    """Width, height and rows of RGB(A) pixels of an 8-bit PNG (what chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * channels, [], bytes(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = bytes(line)
    return width, height, rows, channels


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                    "(apt-get install chromium); the HTML report is not rendered")
def test_html_report_renders_in_chromium(capsys, archive, tmp_path):
    page = tmp_path / "report.html"
    code, out, err = tvmc(capsys, "report", str(archive), "-o", str(page))
    assert code == 0, err
    html = page.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in html and "https://" not in html
    # the DOM chromium built: every picture is an SVG element with its shapes
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout.decode()
    plan = load_model_library_format(str(archive)).modules["conv"].memory_layout
    for svg_id in ("flash-bars", "ram-bars", "arena-bars"):
        assert f'<svg id="{svg_id}"' in dom
    assert dom.count('<svg class="plan"') == 2
    assert dom.count('class="buffer"') >= len(plan.buffers)
    assert dom.count('class="peak"') == 2 and dom.count('class="bound"') == 2
    # the screenshot is not blank: the plan's tensor colour is painted over many pixels
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, "--window-size=1200,1400", f"--screenshot={shot}", page.as_uri())
    width, height, rows, channels = _png_pixels(shot.read_bytes())
    pixels = [row[i:i + 3] for row in rows for i in range(0, len(row), channels)]
    non_white = sum(1 for p in pixels if min(p) < 200)
    assert non_white > 0.02 * width * height
    blue = sum(1 for p in pixels if abs(p[0] - 113) < 20 and abs(p[1] - 146) < 20
               and abs(p[2] - 184) < 20)  # #4e79a7 at 0.8 over the plan's #fafafa
    assert blue > 500


@pytest.mark.arm
@pytest.mark.skipif(not all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm",
                                                       "make")),
                    reason="needs arm-none-eabi-gcc, qemu-system-arm and make")
def test_cortex_m_profile_fills_the_instructions_column(capsys, tmp_path):
    """A Cortex-M4 run (tvmc micro, QEMU) of a module with its inputs and outputs in the
    workspace: outputs bit-exact with TFLite Micro, and its per-operator profile gives the
    report's instructions per layer."""
    import numpy as np

    import references
    from builders import tflite_models

    model = tmp_path / "kws8.tflite"
    model.write_bytes(tflite_models.int8_conv_fc_softmax())
    archive = tmp_path / "m.tar"
    assert driver.main(["compile", str(model), "--module-name", "kws8", "--target-c-mcpu",
                        "cortex-m4", "--pass-config", "tir.usmp.use_workspace_io=1", "-o",
                        str(archive)], entry_point_loader=NO_PLUGINS) == 0
    project = tmp_path / "fw"
    assert driver.main(["micro", "create-project", str(project), str(archive), "--board",
                        "mps2_an386"]) == 0
    module = load_model_library_format(str(archive)).modules["kws8"]
    x = references.random_array(module.inputs[0].shape, "int8", np.random.default_rng(3))
    np.savez(tmp_path / "in.npz", **{module.inputs[0].name: x})
    profile = tmp_path / "profile.json"
    code, _, err = tvmc(capsys, "run", "--device", "micro", str(project), "-i",
                        str(tmp_path / "in.npz"), "-o", str(tmp_path / "out.npz"), "--profile",
                        "--profile-json", str(profile), "--invokes", "2")
    assert code == 0, err
    got = np.load(tmp_path / "out.npz")[module.outputs[0].name]
    np.testing.assert_array_equal(got, references.run_tflite_micro(model.read_bytes(), [x])[0])
    counts = json.loads(profile.read_text())["kws8"]
    assert {int(k) for k in counts} == {layer.step for layer in module.layers}
    code, out, err = tvmc(capsys, "report", str(archive), "--profile", str(profile))
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("step  layer"))
    assert header.split()[-1] == "instructions"
    first = module.layers[0]
    row = next(line for line in out.splitlines()
               if line.split()[:1] == [str(first.step)] and first.function_name in line.split())
    assert row.split()[-1] == str(counts[str(first.step)])


# layer names built to break a terminal (escape sequence, newline, bidirectional override),
# HTML (a closing tag and a script), C comments (*/ and a backslash), number columns ("1000",
# a superscript digit int() refuses) and widths (1500 characters, beyond what archives keep)
HOSTILE_LAYERS = ["</td><script>alert(1)</script>", "red\x1b[31m\nline", "\u00b2", "1000",
                  "a*/b\\", "n" * 1500, "\u202eevil"]


@pytest.fixture(scope="module")
def hostile_archive(tmp_path_factory) -> Path:
    """A chain MatMul, Relu, MatMul... whose nodes carry HOSTILE_LAYERS, unfused (-O0), so
    each node is one layer; then an unnamed Relu writing the model output `y`."""
    import numpy as np
    from onnx import TensorProto, helper

    nodes, inits, prev = [], [], "x"
    for i, name in enumerate(HOSTILE_LAYERS + [""]):
        out = "y" if i == len(HOSTILE_LAYERS) else f"t{i}"
        if i % 2 == 0:
            inits.append(helper.make_tensor(f"w{i}", TensorProto.FLOAT, [4, 4],
                                            (np.eye(4) * (i + 1)).flatten().tolist()))
            nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [out], name=name))
        else:
            nodes.append(helper.make_node("Relu", [prev], [out], name=name))
        prev = out
    graph = helper.make_graph(
        nodes, "hostile_layers", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    folder = tmp_path_factory.mktemp("hostile_layers")
    onnx_models.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                       ir_version=8), folder / "h.onnx")
    out = folder / "h.tar"
    assert driver.main(["compile-multi", f"{folder / 'h.onnx'}:h", "-O0", "-j", "1", "-o",
                        str(out)], entry_point_loader=NO_PLUGINS) == 0
    return out


def test_archive_keeps_raw_layer_names(hostile_archive):
    from tvmc_multimodule.mlf.analysis import MAX_NAME_CHARS

    layers = load_model_library_format(str(hostile_archive)).modules["h"].layers
    # the unnamed last layer writes the model output: it takes the output's name
    assert [layer.name for layer in layers] == [n[:MAX_NAME_CHARS] for n in HOSTILE_LAYERS] + ["y"]


def test_text_report_shows_layer_names_printable(capsys, hostile_archive):
    code, out, err = tvmc(capsys, "report", str(hostile_archive))
    assert code == 0, err
    assert "\x1b" not in out and "\u202e" not in out
    rows = [line for line in out.splitlines() if re.match(r"^\s+\d+\s", line)]
    shown = ["</td><script>alert(1)</script>", r"red\x1b[31m\nline", "\u00b2", "1000",
             "a*/b\\\\", "n" * 45 + "...", r"\u202eevil", "y"]
    assert len(rows) == len(shown)
    for row, name in zip(rows, shown):
        assert f"  {name}  " in row, (row, name)


def test_html_report_shows_layer_names_escaped(capsys, hostile_archive, tmp_path):
    from html.parser import HTMLParser

    page = tmp_path / "r.html"
    code, _, err = tvmc(capsys, "report", str(hostile_archive), "-o", str(page))
    assert code == 0, err
    html = page.read_text()
    assert "<script" not in html and "\x1b" not in html

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                self.rows[-1].append("".join(self.cell))
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    parser = Cells()
    parser.feed(html)
    header = next(r for r in parser.rows if r[:2] == ["step", "layer"])
    layer_rows = [r for r in parser.rows if len(r) == len(header) and r[0].isdigit()]
    names = [r[1] for r in layer_rows]
    assert names == ["</td><script>alert(1)</script>", r"red\x1b[31m\nline", "\u00b2", "1000",
                     "a*/b\\\\", "n" * 1024, r"\u202eevil", "y"]
    numbers = [c for r in layer_rows for c in re.findall(r'<td class="n">([^<]*)</td>', html)]
    assert "1,000" not in numbers  # the layer named "1000" is text, not a count


@pytest.mark.parametrize("name, message", [
    (7, "must be a string"), ("n" * 1025, "must be a string"), ("\ud800", "not valid Unicode")])
def test_malformed_layer_name_is_refused(capsys, hostile_archive, tmp_path, name, message):
    root = tmp_path / "x"
    with tarfile.open(hostile_archive) as tar:
        tar.extractall(root, filter="data")
    meta = json.loads((root / "metadata.json").read_text())
    meta["modules"]["h"]["layers"][0]["name"] = name
    (root / "metadata.json").write_text(json.dumps(meta))
    code, _, err = tvmc(capsys, "report", str(root))
    assert code == 5 and message in err and "layers[0].name" in err
