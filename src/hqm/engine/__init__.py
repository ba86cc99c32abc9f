"""Training and evaluation loops: glue between data, models and evaluation."""
