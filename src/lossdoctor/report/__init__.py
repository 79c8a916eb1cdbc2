"""Reports: the findings and the trace, for the terminal and as JSON."""

from lossdoctor.report.report import Report

__all__ = ["Report"]
