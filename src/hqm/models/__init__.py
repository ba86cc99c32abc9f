"""The QPIC detector and the HQM hard-positive query streams (no file or dataset code here)."""
