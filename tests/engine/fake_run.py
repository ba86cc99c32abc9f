"""Run the engine on the fakes in a fresh process: ``python fake_run.py RUN_DIR [JSON overrides]``.

Honours torchrun variables (via build_dist_env) and HQM_TEST_STEP_SLEEP (seconds per loss call,
to give a kill -9 test time to strike mid-run).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import fakes  # noqa: E402

import hqm.engine.train as engine_train  # noqa: E402
from hqm.engine.distributed import build_dist_env, shutdown  # noqa: E402


def main(run_dir: str, overrides: str = "{}") -> None:
    options = json.loads(overrides)
    dropout = options.pop("dropout", 0.0)
    cfg = fakes.fake_config(**options)
    comps = fakes.fake_components(dropout=dropout)
    delay = float(os.environ.get("HQM_TEST_STEP_SLEEP", "0"))
    if delay:
        forward = comps.criterion.forward

        def slow(*args, **kwargs):
            time.sleep(delay)
            return forward(*args, **kwargs)

        comps.criterion.forward = slow
    engine_train.evaluate_model = fakes.fake_evaluate
    env = build_dist_env("cpu", 1)
    try:
        engine_train.run_training(cfg, run_dir, env, comps)
    finally:
        shutdown(env)


if __name__ == "__main__":
    main(*sys.argv[1:])
