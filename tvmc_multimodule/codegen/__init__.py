"""Stage 3: lowered operators and the static program -> C sources and the module header.

The names below are loaded on first use (PEP 562): `operators` and `runner` load TVM, and the
TVM-free helpers (`constants`, `ctypes`) serve `tvmc report`, which should not wait for it."""
from __future__ import annotations

import importlib
from typing import Any

_SUBMODULE_OF = {
    "constant_definition": "constants", "without_constant_data": "constants",
    "c_type": "ctypes",
    "WORKSPACE_MODES": "header", "module_header": "header",
    "operators_source": "operators",
    "add_const": "restrict", "add_restrict": "restrict",
    "constant_names": "runner", "read_only_params": "runner", "runner_source": "runner",
    "static_state_source": "runner", "static_workspace_source": "runner",
}
__all__ = sorted(_SUBMODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _SUBMODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_SUBMODULE_OF[name]}", __name__), name)
