"""hqm: Hard-Positive Query Mining for DETR-based HOI detection, on top of QPIC."""

__version__ = "0.1.0"
