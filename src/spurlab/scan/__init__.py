"""Find spurious tokens in a dataset before training."""

from spurlab.scan.scanner import Finding, ScanConfig, ScanReport, report_from_dict, scan
from spurlab.scan.shapes import shapes_of, tokenize

__all__ = ["Finding", "ScanConfig", "ScanReport", "report_from_dict", "scan", "shapes_of", "tokenize"]
