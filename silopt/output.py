"""Where silopt writes: standard output and error, and output files written whole or not at all."""

from __future__ import annotations

import os
import stat
import tempfile
from typing import IO

import attrs

from sil.diagnostics import Diagnostic


@attrs.frozen
class Console:
    """The streams silopt reads and writes."""

    stdin: IO[str]
    stdout: IO[str]
    stderr: IO[str]

    def write(self, text: str) -> int:
        """Write ``text`` to standard output; a failure (a full disk) is reported, status 1."""
        try:
            self.stdout.write(text)
            self.stdout.flush()
        except OSError as e:
            return self.error(f"cannot write the output: {e.strerror or e}")
        return 0

    def error(self, message: str) -> int:
        """Report an error that has no place in the input; status 1."""
        self.stderr.write(f"silopt: error: {message}\n")
        return 1

    def report(self, diagnostics: list[Diagnostic]) -> None:
        for d in diagnostics:
            self.stderr.write(d.render())


class Output:
    """Where the output goes, chunk by chunk (the parts of ``--split-input-file``, ``separator``
    between two): to standard output as each chunk ends (``path`` None), or to the file ``path``,
    written whole at the end, and only when every chunk succeeded and one printed something (a run
    whose diagnostics were all expected writes no file)."""

    def __init__(self, console: Console, path: str | None, separator: str) -> None:
        self.console = console
        self.path = path
        self.separator = separator
        self.texts: list[str] = []
        self.chunks = 0
        self.printed = False
        self.status = 0  # 1 once writing to standard output failed: nothing more is written

    def add(self, text: str, printed: bool) -> None:
        """The output of the next chunk; ``printed``: it ran to the end (no diagnostic stopped it)."""
        if self.chunks:
            text = self.separator + text
        self.chunks += 1
        self.printed = self.printed or printed
        if self.path is not None:
            self.texts.append(text)
        elif self.status == 0:
            self.status = self.console.write(text)

    def close(self, succeeded: bool) -> int:
        """Write the file, if it is to be written; the exit status."""
        if self.path is None or not succeeded or not self.printed:
            return self.status or (0 if succeeded else 1)
        try:
            write_atomically(self.path, "".join(self.texts))
        except OSError as e:
            return self.console.error(f"cannot write '{self.path}': {e.strerror}")
        return 0


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a failure leaves nothing half-way.

    The file gets the mode an existing ``path`` has, else the one ``open`` would give a new file
    (0666 less the umask), not the temporary file's 0600. A symbolic link is written through, and
    what is not a regular file (``/dev/full``, a pipe) is written directly: renaming over it would
    replace the device or pipe with a file."""
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    else:
        if not stat.S_ISREG(status.st_mode):
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
            return
        mode = stat.S_IMODE(status.st_mode)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".silopt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it back at once
    os.umask(mask)
    return mask
