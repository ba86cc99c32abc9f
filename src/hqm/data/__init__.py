"""Data acquisition, conversion, datasets and the synthetic HOI generator (no model code here)."""
