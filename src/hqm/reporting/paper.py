"""Published reference numbers (the only place they live), each with its source and citation key.

All values are percentages as the papers/READMEs print them. HICO-DET metrics are mAP for the
Default (``default``) and Known-Object (``known_object``) settings, each Full / Rare / Non-rare;
V-COCO metrics are role AP for scenario 1 and 2 over the 24 action-roles papers report (without
``point-instr``) and agent AP. A metric missing from ``values`` was not published. The standalone
GBS / AMM ablations have no published numbers in the sources transcribed here (the READMEs).
Citation keys are those of ``references.bib`` at the repository root.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Column keys shared with hqm.reporting.tables.
HICO_METRICS = (
    "default_full",
    "default_rare",
    "default_nonrare",
    "ko_full",
    "ko_rare",
    "ko_nonrare",
)
VCOCO_METRICS = ("role_ap_s1", "role_ap_s2", "agent_ap")

# references.bib keys
CITE_QPIC = "tamura2021qpic"
CITE_HQM = "zhong2022hqm"

# How the papers name the methods and backbones in their tables.
METHOD_LABELS = {"qpic": "QPIC", "gbs": "QPIC + GBS", "amm": "QPIC + AMM", "hqm": "QPIC + HQM"}
BACKBONE_LABELS = {"resnet10": "R10", "resnet18": "R18", "resnet34": "R34", "resnet50": "R50", "resnet101": "R101"}


def method_label(method: str, variant: str | None = None) -> str:
    """``QPIC + HQM``; a variant whose name differs from its method is added in brackets."""
    label = METHOD_LABELS.get(method, method)
    return label if variant in (None, method) else f"{label} [{variant}]"


def backbone_label(backbone: str) -> str:
    return BACKBONE_LABELS.get(backbone, backbone)


@dataclass(frozen=True)
class PublishedResult:
    """One published row: a model, its backbone, its numbers (percent) and where they come from."""

    model: str
    method: str  # the project's method name this row is the reference for
    backbone: str  # torchvision name, e.g. resnet50
    dataset_format: str  # "hico" | "vcoco"
    values: dict[str, float]
    source: str
    cite: str  # references.bib key of the paper the row belongs to
    flags: dict[str, str] = field(default_factory=dict)  # metric -> caveat printed as a footnote


QPIC_README = "QPIC README, github.com/hitachi-rd-cv/qpic (results table)"
HQM_README = "HQM README, the official ECCV 2022 repository (results table and python log)"

PUBLISHED: tuple[PublishedResult, ...] = (
    PublishedResult(
        model="QPIC",
        method="qpic",
        backbone="resnet50",
        dataset_format="hico",
        values={
            "default_full": 29.07,
            "default_rare": 21.85,
            "default_nonrare": 31.23,
            "ko_full": 31.68,
            "ko_rare": 24.14,
            "ko_nonrare": 33.93,
        },
        source=QPIC_README,
        cite=CITE_QPIC,
    ),
    PublishedResult(
        model="QPIC",
        method="qpic",
        backbone="resnet101",
        dataset_format="hico",
        values={
            "default_full": 29.90,
            "default_rare": 23.92,
            "default_nonrare": 31.69,
            "ko_full": 32.38,
            "ko_rare": 26.06,
            "ko_nonrare": 34.27,
        },
        source=QPIC_README,
        cite=CITE_QPIC,
    ),
    PublishedResult(
        model="QPIC + HQM",
        method="hqm",
        backbone="resnet50",
        dataset_format="hico",
        values={
            "default_full": 31.34,
            "default_rare": 26.54,
            "default_nonrare": 32.78,
            "ko_full": 34.09,
            "ko_rare": 29.63,
            "ko_nonrare": 35.42,
        },
        source=HQM_README,
        cite=CITE_HQM,
        flags={
            key: "identical digit for digit to the Known-Object row of CDN-S in the CDN README "
            "(possibly a copy error); not a hard target"
            for key in ("ko_full", "ko_rare", "ko_nonrare")
        },
    ),
    PublishedResult(
        model="QPIC",
        method="qpic",
        backbone="resnet50",
        dataset_format="vcoco",
        values={"role_ap_s1": 58.8, "role_ap_s2": 61.0},
        source=QPIC_README,
        cite=CITE_QPIC,
    ),
    PublishedResult(
        model="QPIC",
        method="qpic",
        backbone="resnet101",
        dataset_format="vcoco",
        values={"role_ap_s1": 58.3, "role_ap_s2": 60.7},
        source=QPIC_README,
        cite=CITE_QPIC,
    ),
    PublishedResult(
        model="QPIC + HQM",
        method="hqm",
        backbone="resnet50",
        dataset_format="vcoco",
        values={"role_ap_s1": 63.6},  # scenario 2 not given
        source=HQM_README,
        cite=CITE_HQM,
    ),
)

VCOCO_DETR_NOTE = (
    "QPIC's published V-COCO numbers start from a DETR re-trained on COCO without the images of the "
    "V-COCO test set (those weights were never released); the runs here start from the standard COCO "
    "DETR weights, so the comparison is not like for like."
)


def find_published(method: str, dataset_format: str, backbone: str = "resnet50") -> PublishedResult | None:
    """The published row for ``method`` with exactly this backbone, or ``None`` when there is none."""
    for row in PUBLISHED:
        if row.method == method and row.dataset_format == dataset_format and row.backbone == backbone:
            return row
    return None


def published_rows(dataset_format: str) -> list[PublishedResult]:
    """Every published row of a dataset format, in the order above (QPIC first)."""
    return [row for row in PUBLISHED if row.dataset_format == dataset_format]
