"""HICO-DET and V-COCO evaluators: predictions and ground truth in, metrics out (no models)."""
