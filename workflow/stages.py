"""Write ``dvc.yaml`` from params.yaml and the stage table (hqm.pipeline.dvc does the work).

    python workflow/stages.py                    # dvc.yaml for params.yaml (the committed file)
    python workflow/stages.py --overlay config/paper.yaml --merge-params   # the paper, on a branch
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from hqm.pipeline.dvc import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(root=ROOT))
