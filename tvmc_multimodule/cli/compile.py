"""`tvmc compile MODEL`: one model -> a Model Library Format archive, as tvmc did it."""
from __future__ import annotations

import argparse

from . import options
from .compile_multi import compile_and_write

EXAMPLES = """\
examples:
  tvmc compile kws.tflite -o kws.tar
  tvmc compile kws.tflite --module-name kws --target "c -mcpu=cortex-m4" -o kws.tar
  tvmc compile model.onnx --input-shapes "input:[1,3,224,224]"
"""


def register_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compile", help="compile one model into a Model Library Format archive",
        description="Compile a model to plain C (symbols tvmgen_<NAME>_*) in a Model Library\n"
                    "Format archive. For several models in one archive use compile-multi.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="MODEL", help="model file (.tflite or .onnx)")
    parser.add_argument("--module-name", default="default", metavar="NAME",
                        help="module name: generated symbols are tvmgen_<NAME>_* "
                             "(default: default)")
    options.add_compile_options(parser, multi=False)
    parser.set_defaults(func=drive_compile)


def drive_compile(args: argparse.Namespace) -> int:
    # the file is taken verbatim (no MODEL:NAME splitting), as tvmc's FILE argument was
    jobs, settings = options.validate_compile(args, [(args.model, args.module_name)],
                                              module_prefixes=False)
    return compile_and_write(jobs, settings)
