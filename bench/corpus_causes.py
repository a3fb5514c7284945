"""A short, normalised cause for a failure, from its one-line message (`tvmc compile`'s
`error:` line, a gcc error, the reference runtime's exception), so that models failing for
the same reason group together in the corpus table and totals.

Rules are tried in order; the first whose pattern matches the message names the cause. The
product lists every unsupported feature of a model at once ("; "-separated), so a compile
message may give several causes: they are joined with ", ".
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

RECURRENT = {"LSTM", "GRU", "RNN", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM",
             "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_RNN"}
CONTROL = {"If": "If", "Loop": "Loop", "Scan": "Scan", "IF": "If", "WHILE": "While"}


def _names(listing: str) -> list[str]:
    """"LSTM (x2), If, ai.onnx.ml::ZipMap" -> ["LSTM", "If", "ai.onnx.ml::ZipMap"]."""
    return [re.sub(r"\s*\(x\d+\)$", "", part.strip()) for part in listing.split(",") if part.strip()]


def _operator_cause(name: str) -> str:
    bare = name.split("::")[-1]
    if bare in RECURRENT:
        return "LSTM" if "LSTM" in bare else bare
    if bare in CONTROL:
        return CONTROL[bare]
    return f"unsupported operator {bare}"


def _operators(match: re.Match) -> str:
    return ", ".join(dict.fromkeys(_operator_cause(n) for n in _names(match.group(1))))


def _custom(match: re.Match) -> str:
    # ONNX names them DOMAIN.OP (older messages DOMAIN::OP): the operator's own name
    return ", ".join(f"custom op {n.split('::')[-1].rsplit('.', 1)[-1]}"
                     for n in _names(match.group(1)))


def _control(match: re.Match) -> str:
    names = _names(match.group(1))
    if len(names) == 1 and names[0].endswith("subgraphs"):
        return "subgraphs"
    return ", ".join(dict.fromkeys(_operator_cause(n) for n in names))


def _types(match: re.Match) -> str:
    kinds = [t.strip() for t in match.group(1).split(",")]
    return ", ".join("fp16 weights" if t == "float16" else f"tensor type {t}" for t in kinds)


def _left_after_lowering(match: re.Match) -> str:
    return f"{match.group(1).split('.')[-1]} left after lowering"


Rule = tuple[str, Callable[[re.Match], str] | str]
# (pattern searched in one "; "-separated part of the message, cause or cause builder)
RULES: Sequence[Rule] = (
    (r"unsupported operators?: (.*)", _operators),
    # the listing ends where the product's advice begins: " (give each its C ...)" or " - ..."
    (r"custom operators?: (.*?)(?: \(give | - |$)", _custom),
    (r"unresolved custom op: (\w+)", lambda m: f"custom op {m.group(1)}"),  # LiteRT
    (r"Node number \d+ \((\w+)\) failed to prepare", lambda m: f"{m.group(1)} failed to prepare"),
    (r"an output is not a tensor", "non-tensor output"),
    (r"control flow is not supported: (.*)", _control),
    (r"control flow: (\w+) node .* computed at run time", lambda m: f"{m.group(1)} (run-time condition)"),
    (r"well_formed refuses", "ill-formed import"),
    (r"stateful variables|VAR_HANDLE|READ_VARIABLE|ASSIGN_VARIABLE|resource variable",
     "resource variables"),
    (r"dynamic-range quanti[sz]ation", "dynamic-range quantisation"),
    (r"unsupported tensor types: (.*)", _types),
    (r"holds \d+ bytes of data for the shape", "sparse weights"),  # sparse data read as dense
    (r"float16", "fp16 weights"),
    (r"sparse", "sparse weights"),
    (r"has dynamic dim 0( \([^)]*\))?$", "dynamic batch dim"),
    (r"has dynamic dim|dynamic input|symbolic dimension|--input-shapes", "dynamic dims"),
    (r"Expected nested to match tuple|Invalid SLayout|layout", "layout conversion"),
    (r"operation '([\w.]+)' is left after lowering", _left_after_lowering),
    (r"Reshape requires the input new shape|shape arithmetic", "shape arithmetic"),
    (r"symbolic shape", "symbolic shape"),
    (r"timed out|timeout", "timeout"),
    (r"TypeError", "frontend TypeError"),
)


def _normalise(text: str) -> str:
    """Numbers and quoted names out, so that the same failure on two models reads the same."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\[[\d, ]*\]|\b\d+(\.\d+)?\b", "N", text)
    return re.sub(r"\s+", " ", text).strip()[:60]


def strip_location(line: str) -> str:
    """"error: mod (path/m.onnx): message - hint" -> "message";
    "/x/m_lib0.c:260:32: error: message" (gcc) -> "C: message"."""
    gcc = re.match(r"^\S+:\d+:\d+: (?:fatal )?error: (.*)", line.strip())
    if gcc:
        return f"C: {gcc.group(1)}"
    line = re.sub(r"^\s*error:\s*", "", line.strip())
    line = re.sub(r"^[\w.-]+ \([^)]*\):\s*", "", line)  # module (file):
    return line.split(" - ", 1)[0].strip()  # the product's " - hint"


def classify(message: str, exit_code: int | None = None) -> str:
    """The cause of one failure (exit_code: `tvmc compile`'s, when the stage is compile)."""
    text = strip_location(message)
    causes: list[str] = []
    for part in (p for p in text.split("; ") if p.strip()):
        for pattern, cause in RULES:
            match = re.search(pattern, part)
            if match:
                causes.append(cause if isinstance(cause, str) else cause(match))
                break
    if causes:
        found = ", ".join(dict.fromkeys(causes))
        return f"internal error: {found}" if exit_code == 70 else found
    if exit_code == 70:
        detail = re.search(r"(\w+(Error|Exception)):\s*(.*)", text)
        return "internal error" + (f": {detail.group(1)}: {_normalise(detail.group(3))}" if detail else "")
    return _normalise(text) or "no message"
