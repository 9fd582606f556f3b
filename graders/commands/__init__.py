"""One module per ``python -m graders`` command; shared argument types live here."""

from __future__ import annotations

import argparse
import math


def seconds(text: str) -> float:
    """An argparse type for durations: a finite number above 0. ``inf`` and ``nan`` parse as floats
    but would disable or break every deadline, so they are refused at parse time (one line, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of seconds above 0, such as 30")
    return value
