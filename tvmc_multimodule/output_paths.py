"""Where an output file really goes, and what may never be replaced by one.

Outputs (archives, `run`'s .npz) are written to a temporary file next to their destination and
renamed over it. The rules, checked before any work and again when writing:

- only a regular file (or nothing) is replaced: a directory, character or block device, FIFO
  or socket at the path is refused, so ``-o /dev/null`` never replaces the device node;
- a symbolic link is written THROUGH: its final target is replaced and the link stays a link
  pointing to it (as ``cp`` and the shell's ``>`` do); a link to a missing file or a loop of
  links is refused, since where the data would land is unclear;
- the file name must fit the file system's limit (NAME_MAX bytes), checked up front; the
  temporary name is built from a shortened copy of it, so it always fits.
"""
from __future__ import annotations

import errno
import os
import stat
import sys

from .errors import OutputError

NAME_MAX_FALLBACK = 255
TEMP_STEM_BYTES = 64  # of the output's name kept in the temporary file's name


def kind_of(mode: int) -> str:
    """A file type in words, for messages."""
    for test, word in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return word
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def resolve_output(path: str) -> str:
    """The file that writing `path` replaces: `path` itself, or a symbolic link's final target.

    Raises OutputError for a directory, a special file, a link to a missing file or a link
    loop. A path that does not exist yet is returned as it is.
    """
    try:
        own = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return path  # nothing to replace; the caller checks the folder
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return path  # check_name_length says it better
        raise OutputError(f"cannot inspect the output path: {exc.strerror}", path=path) from None
    target = path
    if stat.S_ISLNK(own.st_mode):
        target = os.path.realpath(path)
        try:
            own = os.stat(path)
        except FileNotFoundError:
            raise OutputError(f"output path is a symbolic link to a missing file '{target}'",
                              path=path, hint="create the target, or remove the link") from None
        except OSError as exc:
            raise OutputError(f"output path is a symbolic link that cannot be followed: "
                              f"{exc.strerror}", path=path,
                              hint="fix or remove the link") from None
    if stat.S_ISDIR(own.st_mode):
        raise OutputError("output path is a directory", path=path,
                          hint="give a file name, e.g. -o " + os.path.join(path, "models.tar"))
    if not stat.S_ISREG(own.st_mode):
        via = f" (through the link to '{target}')" if target != path else ""
        raise OutputError(f"output path is {kind_of(own.st_mode)}{via}: refusing to replace it",
                          path=path, hint="give the path of a regular file")
    return target


def same_file(path: str, other: str) -> bool:
    """Whether two paths name one file (also through links or hard links)."""
    try:
        first, second = os.stat(path), os.stat(other)
    except OSError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def name_max(folder: str) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX_FALLBACK


def check_name_length(path: str) -> None:
    """The output's file name fits the file system's limit (bytes, in the file system's
    encoding), so the rename after a long compile cannot fail on it."""
    target = resolve_output(path)
    folder = os.path.dirname(os.path.abspath(target))
    name = os.fsencode(os.path.basename(target))
    limit = name_max(folder) if os.path.isdir(folder) else NAME_MAX_FALLBACK
    if len(name) > limit:
        raise OutputError(f"output file name is {len(name)} bytes long, longer than the "
                          f"{limit} bytes the file system allows", path=path,
                          hint="choose a shorter name")


def temp_prefix(target: str) -> str:
    """``.<name>.`` for the temporary file next to `target`, the name shortened so the whole
    temporary name fits NAME_MAX whatever the output's length."""
    stem = os.fsencode(os.path.basename(target))[:TEMP_STEM_BYTES]
    # a character cut in two is dropped, not left as a broken byte sequence
    return "." + stem.decode(sys.getfilesystemencoding(), "ignore") + "."
