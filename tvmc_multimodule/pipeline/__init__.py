"""Stage 2: Relax passes, operator schedules and lowering to host TIR, the static program and
its memory plan."""
from .layers import count_macs, describe_layers, memory_layout
from .memory_plan import (MemoryPlan, align_up, check_plan, liveness_bound, plan_memory,
                          scratch_at_peak)
from .program import (BranchElse, BranchEnd, BranchIf, Buffer, Call, Constant, Copy, Input,
                      LoopBegin, LoopBreak, LoopEnd, Output, Program, build_program,
                      called_operators_only, loop_ranges, step_locations)
from .state import write_back_in_place
from .relax_passes import DESIRED_LAYOUTS, lower_relax
from .schedules import VARIANTS as SCHEDULE_VARIANTS
from .schedules import ScheduleOptions, options_for_target, schedule_operators
from .tir_passes import LoweredOperators, OperatorSignature, lower_operators

__all__ = ["count_macs", "describe_layers", "memory_layout", "MemoryPlan", "align_up", "check_plan", "liveness_bound", "plan_memory", "scratch_at_peak", "Buffer",
           "BranchIf", "BranchElse", "BranchEnd", "step_locations",
           "LoopBegin", "LoopBreak", "LoopEnd", "loop_ranges", "Call", "Constant", "Copy", "Input", "Output", "Program", "build_program", "called_operators_only",
           "lower_relax", "DESIRED_LAYOUTS", "SCHEDULE_VARIANTS", "ScheduleOptions", "options_for_target",
           "schedule_operators", "LoweredOperators", "OperatorSignature", "lower_operators", "write_back_in_place"]
