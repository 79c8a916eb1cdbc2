"""Bugs from forums."""

from bug import Registry

bug = Registry("forums")
BUGS = bug.bugs
