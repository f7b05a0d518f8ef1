"""Reports of any result: recognise what a path holds (a run folder, a sweep folder, a scan output, a
diagnosis) and write its self-contained ``report.html``."""

from spurlab.publish.kinds import KINDS, build_report, result_kind, write_report

__all__ = ["KINDS", "build_report", "result_kind", "write_report"]
