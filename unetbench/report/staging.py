"""--report-dir written whole or not at all: the report goes into a temp folder beside it, which
replaces the old folder only once every file is written.

    stage = StagedDir(args.report_dir)          # None: nothing staged, paths unchanged
    args.markdown = stage.redirect(args.markdown)   # paths inside the folder -> inside the stage
    ... write ...
    stage.commit()                              # old folder out, new one in (or stage.discard())
    print(stage.shown(path))                    # the path the user will find the file at

Why: an interrupted comparison used to leave new plots beside an old report.md. A kill between
the two renames of commit() leaves the previous report in DIR's sibling .<DIR>.old-*, not lost.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..core.errors import UserError


class StagedDir:
    def __init__(self, final: Path | None, owned: set = frozenset()):
        """``owned``: the names the report writes in ``final``; anything else there is not ours
        to delete when the folder is replaced, and is refused naming it."""
        self.final = Path(final) if final else None
        self.stage: Path | None = None
        if self.final is None:
            return
        if self.final.exists() and not self.final.is_dir():
            raise UserError(f"--report-dir {self.final} is a file, not a folder; name a folder for the report")
        if self.final.is_dir() and owned:
            foreign = sorted(p.name + ("/" if p.is_dir() else "") for p in self.final.iterdir() if p.name not in owned)
            if foreign:
                shown = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
                raise UserError(f"--report-dir {self.final} holds {shown}, which compare_results.py did not write "
                                "and would delete when it replaces the folder; move them out, or choose another "
                                "--report-dir")
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            for stale in self.final.parent.glob(f".{self.final.name}.*.tmp"):   # killed earlier comparisons
                shutil.rmtree(stale, ignore_errors=True)
            self.stage = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", suffix=".tmp", dir=self.final.parent))
        except OSError as err:
            raise UserError(f"cannot write the report folder {self.final}: {err.strerror}; "
                            "choose a writable --report-dir") from None

    def redirect(self, path: Path | None) -> Path | None:
        if self.stage is None or path is None:
            return path
        try:
            return self.stage / Path(path).relative_to(self.final)
        except ValueError:   # named apart from the report folder: written where named
            return path

    def shown(self, path: Path) -> Path:
        if self.stage is None:
            return path
        try:
            return self.final / Path(path).relative_to(self.stage)
        except ValueError:
            return path

    def commit(self) -> None:
        if self.stage is None:
            return
        old = None
        if self.final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.old-", dir=self.final.parent))
            self.final.rename(old / "report")
        self.stage.rename(self.final)
        self.stage = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        if self.stage is not None:
            shutil.rmtree(self.stage, ignore_errors=True)
            self.stage = None
