"""Errors that end a command with one clear line and a documented exit code.

Exit codes (documented in the README and relied on by tests and tools):
  0  success / nothing at or above the failure threshold
  1  findings at or above the threshold, failed checks, or learners graded with errors
  2  bad input (arguments, files) or an unreachable / unusable cluster
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2


class GraderError(Exception):
    """A failure the user can fix; ``str(err)`` is the one line shown to them."""

    exit_code = EXIT_BAD_INPUT


class InputError(GraderError):
    """Bad arguments or files: what is wrong, where, and how to fix it."""


class ClusterError(GraderError):
    """The cluster could not be read (unreachable, forbidden, no such context)."""


class PermissionDenied(ClusterError):
    """The API server answered 403: the grader's own credentials lack a grant. Raised where a caller
    treats a missing optional grant differently from an unreadable cluster (lab 5's pods/log)."""


class GraderSideError(GraderError):
    """Something the grader itself could not do (a port-forward refused or broken, a probe it could
    not send): an error of the grading with the reason, never points lost by the learner."""
