"""Model Library Format (MLF) version 7 archives holding several modules: write and read."""
from __future__ import annotations

from .reader import LoadedArchive, LoadedModule, extract_archive, load_model_library_format
from .writer import export_model_library_format

__all__ = [
    "LoadedArchive",
    "LoadedModule",
    "export_model_library_format",
    "extract_archive",
    "load_model_library_format",
]
