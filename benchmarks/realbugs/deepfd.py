"""Bugs of the DeepFD benchmark not already in deepmufl."""

from bug import Registry

bug = Registry("DeepFD")
BUGS = bug.bugs
