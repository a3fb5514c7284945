"""Direct importer of fully int8-quantised TFLite graphs: integer-only kernels bit-exact with
TFLite Micro's reference kernels (int8 weights, int32 bias, int32 accumulation, TFLite's
fixed-point requantisation), as Relax call_tir to TIR PrimFuncs.

- graph.py: the flatbuffer as typed records; `is_full_int8`
- converters.py: one converter per operator: reads its options and quantisation, makes the
  operator record and asks the kernel library (the `kernels` stage) for the kernel;
  importer.py drives them; fallback.py runs the other operators through the frontend's
  float form
"""
from .converters import CONVERTERS
from .graph import Graph, Operator, Tensor, is_full_int8, read_graph
from .importer import Int8Import, NoIntegerForm, import_int8

INTEGER_OPERATORS = frozenset(CONVERTERS)

__all__ = ["CONVERTERS", "INTEGER_OPERATORS", "Graph", "Int8Import", "NoIntegerForm",
           "Operator", "Tensor", "import_int8", "is_full_int8", "read_graph"]
