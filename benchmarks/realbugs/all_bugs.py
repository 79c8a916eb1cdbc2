"""Every real bug, from every source module."""

from __future__ import annotations

import deepfd
import deepmufl
import defects4ml
import forums
import thedeepchecker
from bug import Bug

BUGS: list[Bug] = [*deepmufl.BUGS, *deepfd.BUGS, *thedeepchecker.BUGS,
                   *defects4ml.BUGS, *forums.BUGS]

_ids = [b.id for b in BUGS]
if len(_ids) != len(set(_ids)):
    raise ValueError("duplicate bug ids")
