"""Read Model Library Format archives: version 7 (any number of modules), 6 and 5 (one module).

Archives are untrusted input: `extract_archive` refuses anything that could write outside the
destination (absolute paths, ``..``, links, device files) and bounds the total size.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ..c_api import DEFAULT_ALIGNMENT, ModuleApi, api_problems, assign_c_names
from ..errors import OutputError
from ..model import LayerInfo, MemoryLayout, OperatorInfo, QuantParams, StateInfo, TensorInfo
from ..names import check_module_name, is_c_identifier
from .analysis import read_analysis

SUPPORTED_VERSIONS = (5, 6, 7)
MAX_ARCHIVE_BYTES = 2 * 1024 ** 3   # total size of the regular files in one archive
MAX_ARCHIVE_MEMBERS = 100_000
_SOURCE_EXTENSIONS = ("c", "cc", "cpp")


@dataclass
class LoadedModule:
    """One module of an archive, rebuilt from its metadata and files."""

    name: str
    target: list[str]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    workspace_size_bytes: int
    constants_size_bytes: int
    io_size_bytes: int
    operator_functions: list[OperatorInfo]
    liveness_bound_bytes: int | None  # our extension; None in archives of other writers
    sources: dict[str, str]          # file name in codegen/host/src -> C text
    header: str | None               # codegen/host/include/tvmgen_<name>.h
    params_bytes: bytes | None       # parameters/<name>.params as stored
    ir_text: str | None              # src/<name>.relax, src/<name>.relay or src/relay.txt
    c_api: ModuleApi | None = None   # the module's C API, from the validated metadata
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    layers: list[LayerInfo] = field(default_factory=list)   # ours: what `tvmc report` shows
    memory_layout: MemoryLayout | None = None
    state_size_bytes: int = 0        # ours: the persistent state (0: a stateless module)
    external_dependencies: list[str] = field(default_factory=list)  # their short names


@dataclass
class LoadedArchive:
    """A whole archive: its format version, its modules by name, and metadata.json as read."""

    version: int
    modules: dict[str, LoadedModule]
    metadata: dict[str, Any] = field(repr=False, default_factory=dict)


# --------------------------------------------------------------------------------------------
# safe extraction


def member_parts(archive: str, member: tarfile.TarInfo) -> list[str]:
    """The member's path as components below the destination, or an OutputError."""
    name = member.name
    if "\0" in name or "\0" in member.linkname:  # a PAX header may hold any byte
        raise OutputError(f"archive member {name!r} has a NUL byte in its name", path=archive,
                          hint="the archive is unsafe; refusing to extract it")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise OutputError(f"archive member '{name}' has an absolute path", path=archive,
                          hint="the archive is unsafe; refusing to extract it")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise OutputError(f"archive member '{name}' points outside the archive ('..')",
                          path=archive, hint="the archive is unsafe; refusing to extract it")
    return parts


def check_member_type(archive: str, member: tarfile.TarInfo) -> None:
    if member.isreg() or member.isdir():
        return
    if member.issym() or member.islnk():
        what = "a symbolic link" if member.issym() else "a hard link"
        raise OutputError(f"archive member '{member.name}' is {what} (to '{member.linkname}')",
                          path=archive, hint="links are refused; the archive is unsafe")
    raise OutputError(f"archive member '{member.name}' is a device, fifo or other special file",
                      path=archive, hint="only regular files and directories are extracted")


def inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: str,
                   parts: list[str], archive: str) -> None:
    target = os.path.join(root, *parts)
    parent = os.path.realpath(os.path.dirname(target))
    if not inside(root, parent):
        raise OutputError(f"archive member '{member.name}' would be written outside the "
                          "destination (through an existing link)", path=archive)
    if member.isdir():
        os.makedirs(target, mode=0o755, exist_ok=True)
        if not os.path.isdir(target) or os.path.islink(target):
            raise OutputError(f"archive member '{member.name}': not a directory in the "
                              "destination", path=archive)
        return
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    mode = 0o755 if member.mode & 0o111 else 0o644
    if os.path.islink(target):
        os.unlink(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    source = tar.extractfile(member)
    if source is None:
        raise OutputError(f"archive member '{member.name}' cannot be read", path=archive)
    with source, os.fdopen(os.open(target, flags, mode), "wb") as out:
        shutil.copyfileobj(source, out)


def extract_archive(path: str, dest_dir: str, *, max_bytes: int = MAX_ARCHIVE_BYTES,
                    max_members: int = MAX_ARCHIVE_MEMBERS) -> list[str]:
    """Extract the tar (optionally compressed) at `path` into `dest_dir`, safely.

    Only regular files and directories are written, all below `dest_dir`. Returns the
    relative paths of the files extracted. Raises OutputError naming the archive and the
    offending member.
    """
    path = os.fspath(path)
    root = os.path.realpath(os.fspath(dest_dir))
    written: list[str] = []
    try:
        os.makedirs(root, exist_ok=True)
        with tarfile.open(path, mode="r:*") as tar:
            total = count = 0
            for member in tar:
                count += 1
                if count > max_members:
                    raise OutputError(f"archive has more than {max_members} members "
                                      f"(stopped at '{member.name}')", path=path)
                check_member_type(path, member)
                parts = member_parts(path, member)
                total += member.size if member.isreg() else 0
                if total > max_bytes:
                    raise OutputError(f"archive contents exceed {max_bytes} bytes "
                                      f"(at member '{member.name}')", path=path,
                                      hint="the archive is too large or a decompression bomb")
                if not parts:
                    continue  # the archive root "."
                extract_member(tar, member, root, parts, path)
                if member.isreg():
                    written.append("/".join(parts))
    except OutputError:
        raise
    except (tarfile.TarError, EOFError) as exc:
        raise OutputError(f"not a readable tar archive: {exc}", path=path) from exc
    except OSError as exc:
        raise OutputError(f"cannot extract the archive: {exc}", path=path) from exc
    return written


# --------------------------------------------------------------------------------------------
# loading


def load_model_library_format(path: str) -> LoadedArchive:
    """Read an MLF archive (.tar, .tar.gz) or a directory it was extracted into."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return load_directory(path, path)
    if not os.path.exists(path):
        raise OutputError("archive not found", path=path)
    with tempfile.TemporaryDirectory(prefix="tvmc-mlf-") as tmp:
        extract_archive(path, tmp)
        return load_directory(tmp, path)


def load_directory(root: str, origin: str) -> LoadedArchive:
    metadata = read_metadata(root, origin)
    version = metadata.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise OutputError(f"metadata.json has no integer 'version' (found {version!r})",
                          path=origin)
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise OutputError(f"Model Library Format version {version} is not supported",
                          path=origin, hint=f"supported versions: {supported}")
    if version == 7:
        modules = modules_v7(root, origin, metadata)
    else:
        modules = {m.name: m for m in [module_single(root, origin, metadata, version)]}
    return LoadedArchive(version=version, modules=modules, metadata=metadata)


def read_metadata(root: str, origin: str) -> dict[str, Any]:
    file_path = os.path.join(root, "metadata.json")
    if not os.path.isfile(file_path):
        raise OutputError("not a Model Library Format archive: metadata.json is missing",
                          path=origin)
    try:
        with open(file_path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise OutputError(f"metadata.json cannot be read: {exc}", path=origin) from exc
    except RecursionError:  # arrays or objects nested thousands deep
        raise OutputError("metadata.json is nested too deeply to read", path=origin,
                          hint="the archive is refused") from None
    if not isinstance(data, dict):
        raise OutputError("metadata.json is not a JSON object", path=origin)
    return data


def modules_v7(root: str, origin: str, metadata: dict[str, Any]) -> dict[str, LoadedModule]:
    modules = metadata.get("modules")
    if not isinstance(modules, dict) or not modules:
        raise OutputError("metadata.json (version 7) has no 'modules' object", path=origin)
    out: dict[str, LoadedModule] = {}
    lower = {}
    for name in modules:
        check_name(origin, name, "module key")
        if lower.setdefault(name.lower(), name) != name:
            raise OutputError(f"metadata.json module keys '{lower[name.lower()]}' and '{name}' "
                              "differ only in case (their macros would be the same)",
                              path=origin, hint="the archive is refused")
    for name, raw in modules.items():
        if not isinstance(raw, dict):
            raise OutputError(f"metadata of module '{name}' is not an object", path=origin,
                              module=name)
        ir_files = [f"src/{name}.relax", f"src/{name}.relay"]
        out[name] = build_module(root, origin, name, raw, ir_files, single=len(modules) == 1)
    return out


def check_name(origin: str, name: object, what: str) -> None:
    """A module name from metadata names files (tvmgen_<name>.h, parameters/<name>.params)
    and C symbols: it must be a plain C identifier, or the archive is refused."""
    bad = check_module_name(name) if isinstance(name, str) else None
    if not isinstance(name, str) or bad is not None or not name.isascii():
        raise OutputError(f"metadata.json {what} {name!r} is not a valid module name (a C "
                          "identifier)", path=origin,
                          hint="the archive is refused: its names must be C identifiers")


def bad_metadata(origin: str, name: str, exc: Exception) -> OutputError:
    return OutputError(f"metadata of module '{name}' is malformed: {exc!r}", path=origin,
                       module=name)


def module_single(root: str, origin: str, metadata: dict[str, Any],
                  version: int) -> LoadedModule:
    """Versions 5 and 6: one module whose keys sit at the top level of metadata.json."""
    name = metadata.get("model_name")
    if not isinstance(name, str) or not name:
        raise OutputError(f"metadata.json (version {version}) has no 'model_name'", path=origin)
    check_name(origin, name, "model_name")
    ir_files = ["src/relay.txt", f"src/{name}.relay", f"src/{name}.relax"]
    return build_module(root, origin, name, metadata, ir_files, single=True)


def build_module(root: str, origin: str, name: str, raw: dict[str, Any], ir_files: list[str],
                 *, single: bool) -> LoadedModule:
    try:
        return module_from(root, origin, name, raw, ir_files, single=single)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise bad_metadata(origin, name, exc) from exc


def module_from(root: str, origin: str, name: str, raw: dict[str, Any], ir_files: list[str],
                *, single: bool) -> LoadedModule:
    main = main_entry(raw, origin, name)
    inputs, outputs = tensors_from(main.get("inputs"), main.get("outputs"), origin, name)
    workspace_bytes = main.get("workspace_size_bytes", 0)
    c_api = module_api(origin, name, inputs, outputs, workspace_bytes, raw.get("options"),
                       io_offsets_from(main, raw.get("options")),
                       states_from(main.get("state"), origin, name))
    layers, memory_layout = read_analysis(raw, origin, name)
    return LoadedModule(
        name=name,
        target=target_list(raw.get("target")),
        inputs=inputs,
        outputs=outputs,
        workspace_size_bytes=int(workspace_bytes),
        constants_size_bytes=byte_count(main, "constants_size_bytes", origin, name) or 0,
        io_size_bytes=byte_count(main, "io_size_bytes", origin, name) or 0,
        operator_functions=operators_from(raw, origin, name),
        liveness_bound_bytes=byte_count(main, "liveness_bound_bytes", origin, name, None),
        sources=module_sources(root, origin, name, single=single),
        header=first_text(root, origin, [f"codegen/host/include/tvmgen_{name}.h",
                                         f"codegen/host/include/tvmgen_{name.lower()}.h"]),
        params_bytes=read_bytes(root, origin, f"parameters/{name}.params"),
        ir_text=first_text(root, origin, ir_files),
        c_api=c_api,
        raw=raw,
        layers=layers,
        memory_layout=memory_layout,
        state_size_bytes=c_api.state_bytes,
        external_dependencies=dependencies_from(raw.get("external_dependencies"), origin, name),
    )


def dependencies_from(value: Any, origin: str, module: str) -> list[str]:
    """The short names of the libraries a module calls (CMSIS-NN): a list of objects, each
    with a `short_name` that must be a plain name (it reaches build files)."""
    if value is None:
        return []
    names = []
    for entry in value if isinstance(value, list) else [value]:
        name = entry.get("short_name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}",
                                                          name):
            raise OutputError(f"metadata 'external_dependencies' entry {entry!r:.80} has no "
                              "valid short_name", path=origin, module=module,
                              hint="the archive is refused")
        names.append(name)
    return names


def states_from(entries: object, origin: str, name: str) -> list[StateInfo]:
    """The persistent variables of a stateful module (checked with the rest of the API)."""
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise OutputError("memory.functions.main.state is not a list of objects", path=origin,
                          module=name, hint="the archive is refused")
    states = []
    for entry in entries:
        shape, dtype, offset = entry.get("shape"), entry.get("dtype"), entry.get("offset")
        if not isinstance(shape, list) or not isinstance(dtype, str) \
                or not isinstance(entry.get("name"), str):
            raise OutputError("a state entry lacks its name, shape or dtype", path=origin,
                              module=name, hint="the archive is refused")
        quant = entry.get("quantization")
        states.append(StateInfo(entry["name"], tuple(shape), dtype,
                                QuantParams.from_json(quant) if isinstance(quant, dict)
                                else None, None, offset))  # type: ignore[arg-type]
    return states


def io_offsets_from(main: dict[str, Any], options: object) -> list[object] | None:
    """The inputs' then the outputs' `workspace_offset`, when options.workspace_io says they
    live in the workspace (checked with the rest of the API by `api_problems`)."""
    if not isinstance(options, dict) or options.get("workspace_io") is not True:
        return None
    offsets: list[object] = []
    for key in ("inputs", "outputs"):
        entries = main.get(key) or {}
        for entry in entries.values() if isinstance(entries, dict) else []:
            offsets.append(entry.get("workspace_offset") if isinstance(entry, dict) else None)
    return offsets


def module_api(origin: str, name: str, inputs: list[TensorInfo], outputs: list[TensorInfo],
               workspace_bytes: object, options: object,
               io_offsets: list[object] | None = None,
               states: list[StateInfo] | None = None) -> ModuleApi:
    """The module's C API from its metadata, every value checked first: `tvmc run` builds C
    from it. Archives of other writers (no options) use the static workspace's API."""
    options = options if isinstance(options, dict) else {}
    mode = options.get("workspace", "static")
    alignment = options.get("workspace_byte_alignment", DEFAULT_ALIGNMENT)
    problems = api_problems(name, inputs, outputs, workspace_bytes, mode, alignment,
                            io_offsets, states or [])
    if problems:
        raise OutputError(f"metadata of module '{name}': {problems[0]}", path=origin,
                          module=name, hint="the archive is refused")
    return ModuleApi.build(name, inputs, outputs, int(workspace_bytes),  # type: ignore[arg-type]
                           str(mode), int(alignment),  # type: ignore[arg-type]
                           io_offsets, states or [])  # type: ignore[arg-type]


def main_entry(raw: dict[str, Any], origin: str, name: str) -> dict[str, Any]:
    """memory.functions.main: the entry for the CPU (device 1), else the first one."""
    try:
        entries = raw["memory"]["functions"]["main"]
    except (KeyError, TypeError):
        return {}  # operator-style or graph archives carry no main entry
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise OutputError("memory.functions.main is not a list of objects", path=origin,
                          module=name)
    for entry in entries:
        if entry.get("device") == 1:
            return entry
    return entries[0] if entries else {}


def target_list(value: Any) -> list[str]:
    """Version 6/7 write a list; version 5 wrote {device_type: target}."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [str(value[k]) for k in sorted(value, key=lambda k: (len(str(k)), str(k)))]
    return [str(t) for t in value]


def tensors_from(inputs: Any, outputs: Any, origin: str,
                 module: str) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """The module's inputs and outputs. Their `c_name`s are checked (plain C identifiers,
    unique ignoring case, not reserved); archives without them (other writers) get the C
    names our writer would give."""
    lists = [tensor_list(inputs, origin, module), tensor_list(outputs, origin, module)]
    given = [[c_name for c_name, _ in pairs] for pairs in lists]
    tensors = [[tensor for _, tensor in pairs] for pairs in lists]
    if all(c is None for c in given[0] + given[1]):
        return assign_c_names(tensors[0], tensors[1])
    if any(c is None for c in given[0] + given[1]):
        raise OutputError("some tensors have a 'c_name' and some do not", path=origin,
                          module=module, hint="the archive is refused")
    return tensors[0], tensors[1]


def tensor_list(entries: Any, origin: str, module: str) -> list[tuple[str | None, TensorInfo]]:
    """(c_name as given or None, tensor) for one inputs/outputs object."""
    if not entries:
        return []
    if not isinstance(entries, dict):
        raise OutputError("inputs/outputs metadata is not an object", path=origin, module=module)
    out = []
    for name, entry in entries.items():
        entry = entry if isinstance(entry, dict) else {}
        c_name = entry.get("c_name")
        if c_name is not None and not is_c_identifier(c_name):
            raise OutputError(f"tensor {name!r} has the C name {c_name!r}, which is not a "
                              "plain C identifier", path=origin, module=module,
                              hint="the archive is refused")
        size = entry.get("size")
        if size is not None and not is_byte_count(size):
            raise OutputError(f"tensor {name!r} has the size {size!r}, which is not a byte "
                              "count below 2 GiB", path=origin, module=module,
                              hint="the archive is refused")
        shape = entry.get("shape") or ()
        if not isinstance(shape, (list, tuple)) or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise OutputError(f"tensor {name!r} has a shape that is not a list of integers",
                              path=origin, module=module, hint="the archive is refused")
        quant = entry.get("quantization")
        out.append((c_name, TensorInfo(
            name=name,
            c_name=c_name or "",
            shape=tuple(shape),
            dtype=str(entry.get("dtype", "")),
            quant=QuantParams.from_json(quant) if isinstance(quant, dict) else None,
        )))
    return out


def is_byte_count(value: object) -> bool:
    """An integer in [0, 2 GiB): not a bool, a float (Infinity, NaN), or a huge number."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 31


def byte_count(main: dict[str, Any], key: str, origin: str, module: str,
               default: int | None = 0) -> int | None:
    """memory.functions.main[key], checked with `is_byte_count` (absent: `default`)."""
    value = main.get(key, default)
    if value is None and default is None:
        return None
    if not is_byte_count(value):
        raise OutputError(f"metadata '{key}' is {value!r}, not a byte count below 2 GiB",
                          path=origin, module=module, hint="the archive is refused")
    return int(value)  # type: ignore[arg-type]


def operators_from(raw: dict[str, Any], origin: str, module: str) -> list[OperatorInfo]:
    try:
        entries = raw["memory"]["functions"]["operator_functions"]
    except (KeyError, TypeError):
        return []
    operators = []
    for entry in entries or []:
        sizes = [int(w.get("workspace_size_bytes", 0)) for w in entry.get("workspace") or []]
        function_name = entry["function_name"]
        if not is_c_identifier(function_name):
            raise OutputError(f"operator function name {function_name!r} is not a plain C "
                              "identifier", path=origin, module=module,
                              hint="the archive is refused")
        operators.append(OperatorInfo(function_name, max(sizes, default=0)))
    return operators


# --------------------------------------------------------------------------------------------
# files


def lib_index(file_name: str) -> tuple[int, str]:
    match = re.search(r"lib(\d+)\.[^.]+$", file_name)
    return (int(match.group(1)) if match else -1, file_name)


def module_sources(root: str, origin: str, name: str, *, single: bool) -> dict[str, str]:
    """codegen/host/src/<name>_lib<N>.c files, by N; a single-module archive takes them all."""
    src_dir = os.path.join(root, "codegen", "host", "src")
    if not os.path.isdir(src_dir):
        return {}
    files = sorted(f for f in os.listdir(src_dir) if os.path.isfile(os.path.join(src_dir, f)))
    pattern = re.compile(rf"^{re.escape(name)}_lib\d+\.({'|'.join(_SOURCE_EXTENSIONS)})$")
    chosen = [f for f in files if pattern.match(f)]
    if not chosen and single:
        chosen = [f for f in files if f.rsplit(".", 1)[-1] in _SOURCE_EXTENSIONS]
    return {f: read_text(root, origin, f"codegen/host/src/{f}") or ""
            for f in sorted(chosen, key=lib_index)}


def read_bytes(root: str, origin: str, relative: str) -> bytes | None:
    file_path = os.path.join(root, *relative.split("/"))
    if not os.path.isfile(file_path):
        return None
    if not inside(os.path.realpath(root), os.path.realpath(file_path)):
        raise OutputError(f"'{relative}' leads outside the archive (a link)", path=origin,
                          hint="the archive is refused")
    try:
        with open(file_path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise OutputError(f"cannot read '{relative}': {exc}", path=origin) from exc


def read_text(root: str, origin: str, relative: str) -> str | None:
    data = read_bytes(root, origin, relative)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OutputError(f"'{relative}' is not UTF-8 text: {exc}", path=origin) from exc


def first_text(root: str, origin: str, candidates: list[str]) -> str | None:
    for relative in candidates:
        text = read_text(root, origin, relative)
        if text is not None:
            return text
    return None
