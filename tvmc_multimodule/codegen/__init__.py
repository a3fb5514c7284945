"""Stage 3: lowered operators and the static program -> C sources and the module header."""
from .constants import constant_definition, without_constant_data
from .header import WORKSPACE_MODES, module_header
from .operators import operators_source
from .restrict import add_const, add_restrict
from .runner import read_only_params, runner_source, static_workspace_source

__all__ = ["WORKSPACE_MODES", "add_const", "add_restrict", "read_only_params", "constant_definition", "module_header", "operators_source", "runner_source",
           "static_workspace_source", "without_constant_data"]
