"""What a job's uid may do with a file, judged from the modes on the way to it: which command
it can execute (the agent), which directory stops it (a failed job's permission hint)."""

from __future__ import annotations

import os
from pathlib import Path

READ, WRITE, SEARCH = 4, 2, 1


def may(st: os.stat_result, uid: int, gids: set[int], bit: int) -> bool:
    """Whether ``uid`` (in ``gids``) has permission ``bit`` (4 r, 2 w, 1 x) per the mode."""
    if uid == 0:
        return bit != 1 or bool(st.st_mode & 0o111)
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid in gids:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def blocking_dir(path: str, uid: int, gids: set[int]) -> str | None:
    """The first directory on the way to ``path`` that ``uid`` cannot pass (search), if any."""
    for d in reversed(list(Path(os.path.realpath(path)).parents)):
        try:
            if not may(os.stat(d), uid, gids, SEARCH):
                return str(d)
        except OSError:
            return None
    return None


def usable_by(path: str, uid: int, gids: set[int]) -> bool:
    """Whether ``uid`` can execute ``path``: every directory on the way searchable, the file
    executable (and readable, for a script's interpreter to read it)."""
    try:
        if blocking_dir(path, uid, gids) is not None:
            return False
        st = os.stat(os.path.realpath(path))
    except OSError:
        return False
    return may(st, uid, gids, SEARCH) and may(st, uid, gids, READ)
