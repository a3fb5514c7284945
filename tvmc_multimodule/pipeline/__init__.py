"""Stage 2: Relax passes, operator lowering to host TIR, the static program and its memory plan."""
from .memory_plan import MemoryPlan, align_up, plan_memory
from .program import Call, Constant, Copy, Fresh, Input, Output, Program, Storage, build_program
from .relax_passes import lower_relax
from .schedules import VARIANTS as SCHEDULE_VARIANTS
from .schedules import ScheduleOptions, options_for_target, schedule_operators
from .tir_passes import LoweredOperators, OperatorSignature, lower_operators

__all__ = ["MemoryPlan", "align_up", "plan_memory", "Call", "Constant", "Copy", "Fresh", "Input",
           "Output", "Program", "Storage", "build_program", "lower_relax", "LoweredOperators",
           "OperatorSignature", "lower_operators", "SCHEDULE_VARIANTS", "ScheduleOptions",
           "options_for_target", "schedule_operators"]
