"""A version directory read as untrusted input: checked names and file kinds, a size cap, all before reading.

An artifact may come from anywhere (a download, a shared drive, a pull request), and nothing in it is
trusted until its hash is checked. The checks that protect the reader itself come before any byte is read:

- every name the manifest lists is a plain file name (`check_name`): no separator, no `..`, not absolute,
  no NUL, so a load never reads outside the version directory;
- every entry of the directory is looked at with `lstat` (`listing`), never followed or opened: a
  symlink, FIFO, device, socket or subfolder is refused, so a load never blocks on a FIFO nor reads
  `/dev/zero`; a symlinked version directory is refused too (copy it instead);
- a file bigger than `MAX_FILE_BYTES` is refused from its size, and `read` opens with O_NOFOLLOW |
  O_NONBLOCK, checks the open descriptor again (a file swapped between the check and the open is
  refused, and a FIFO swapped in does not block) and reads at most the cap + 1 bytes.

Refusals are `ArtifactError`s of one line naming the file; a file that is not there raises `OSError`
(callers say what is missing).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from purpose_dspy.errors import ArtifactError

# 64 MiB per file. The shipped artifacts' largest file is a 14 KB manifest, and a component with hundreds
# of long demos stays in single MiBs, so no real artifact comes near it; every file is held in memory
# until its hash is checked, so the cap is what one hostile file can make a load allocate.
MAX_FILE_BYTES = 64 * 1024 * 1024
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_FIX = "the artifact is malformed or was tampered with: recompile it or get it from a trusted source"


def check_name(directory: Path, name: str, where: str) -> None:
    """Refuse `name` (listed under `where` in the manifest) unless it is a plain file name in `directory`."""
    if not isinstance(name, str) or not _PLAIN.fullmatch(name) or name in {".", ".."}:
        raise ArtifactError(f"{directory}: {where} names {name!r}, not a plain file name in the version directory "
                            f"(no separator, '..', absolute path or NUL); nothing was read: {_FIX}")


def _kind(mode: int) -> str | None:
    """What a non-regular entry is, or None for a regular file."""
    for test, kind in ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a subfolder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) else "not a regular file"


def _check_entry(directory: Path, name: str, st: os.stat_result) -> None:
    kind = _kind(st.st_mode)
    if kind is not None:
        raise ArtifactError(f"{directory}/{name} is {kind}; an artifact holds only regular files, so it was not "
                            f"opened: {_FIX}")
    if st.st_size > MAX_FILE_BYTES:
        raise ArtifactError(f"{directory}/{name} is {st.st_size} bytes, over the {MAX_FILE_BYTES}-byte cap per file "
                            f"(purpose_dspy.artifacts.files.MAX_FILE_BYTES); it was not read: {_FIX}")


def listing(directory: Path) -> set[str]:
    """The names in `directory`, each checked to be a regular file under the cap (nothing is opened)."""
    try:
        st = os.lstat(directory)
    except OSError as exc:
        raise ArtifactError(f"{directory} cannot be read ({exc.strerror}): not an artifact version directory") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise ArtifactError(f"{directory} is {_kind(st.st_mode)}, not a version directory; copy the version "
                            "directory into place instead of linking it")
    names = set()
    with os.scandir(directory) as entries:
        for entry in entries:
            _check_entry(directory, entry.name, entry.stat(follow_symlinks=False))
            names.add(entry.name)
    return names


def read(directory: Path, name: str) -> bytes:
    """The bytes of the regular file `directory/name` (at most `MAX_FILE_BYTES`), checked before and after open."""
    path = directory / name
    _check_entry(directory, name, os.lstat(path))
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not path.exists() and not path.is_symlink():
            raise
        raise ArtifactError(f"{path} cannot be opened as a regular file ({exc.strerror}); {_FIX}") from exc
    try:
        _check_entry(directory, name, os.fstat(fd))
        chunks, left = [], MAX_FILE_BYTES + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:
        raise ArtifactError(f"{path} grew past the {MAX_FILE_BYTES}-byte cap while being read; {_FIX}")
    return data
