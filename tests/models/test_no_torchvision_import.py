"""No hqm module imports torchvision (~3 s of CPU per process, via torch._dynamo) at runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torchvision

from hqm.engine import provenance

SRC = Path(__file__).resolve().parents[2] / "src"

# every hqm module, then the calls that build a model and a transform and record provenance
PROBE = """
import importlib, json, pkgutil, sys
import hqm
for name in ["hqm.models.backbone", "hqm.data.transforms", "hqm.engine.train", "hqm.engine.inference",
             "hqm.cli"] + [m.name for m in pkgutil.walk_packages(hqm.__path__, "hqm.")]:
    importlib.import_module(name)
from hqm.config import AugmentConfig
from hqm.data.transforms import build_train_transform
from hqm.engine.provenance import library_versions
from hqm.models.backbone import build_backbone
build_backbone("resnet18"), build_train_transform(AugmentConfig())
versions = library_versions()
print(json.dumps({"loaded": sorted(m for m in sys.modules if m.split(".")[0] == "torchvision"
                                   or m.startswith("torch._dynamo")), "torchvision": versions["torchvision"]}))
"""


def test_hqm_runs_without_importing_torchvision():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    # provenance still records torchvision's full version string (local build tag included)
    assert report["torchvision"] == torchvision.__version__


def test_provenance_version_reader_matches_torchvision():
    assert provenance.torchvision_version() == torchvision.__version__
    assert provenance.library_versions()["torchvision"] == torchvision.__version__
