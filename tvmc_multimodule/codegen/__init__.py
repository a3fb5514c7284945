"""Stage 3: lowered operators and the static program -> C sources and the module header."""
from .constants import constant_definition, without_constant_data
from .ctypes import c_type
from .header import WORKSPACE_MODES, module_header
from .operators import operators_source
from .restrict import add_const, add_restrict
from .runner import constant_names, read_only_params, runner_source, static_state_source, static_workspace_source

__all__ = ["c_type", "WORKSPACE_MODES", "add_const", "add_restrict", "constant_definition", "constant_names",
           "module_header", "operators_source", "read_only_params", "runner_source",
           "static_state_source", "static_workspace_source", "without_constant_data"]
