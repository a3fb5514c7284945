"""`tvmc micro`: firmware projects for Cortex-M boards (QEMU-emulated or any part) from an MLF
archive, their build with footprint, and runs on the emulator with instruction counts.

Downstream of `mlf` (reads archives), used by `cli`."""
from .boards import Board, board_names, load_board, parse_region
from .project import Project, create_project, load_project

__all__ = ["Board", "Project", "board_names", "create_project", "load_board", "load_project",
           "parse_region"]
