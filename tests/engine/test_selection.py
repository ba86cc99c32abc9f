"""Evaluation cadences (upstream QPIC / HQM) and best-epoch selection, as pure functions."""

from __future__ import annotations

from hqm.config import TrainConfig
from hqm.engine.metrics_io import curve_column, headline
from hqm.engine.selection import best_epoch, eval_epochs, selection_score, summary


def test_hqm_cadence_of_the_paper_recipe():
    epochs = eval_epochs(TrainConfig(epochs=80, eval_cadence="hqm"))
    assert epochs == [0, 5, 10, 15, 20, 25, 30, 35, 40, *range(41, 80)]  # HQM main.py: e % 5 == 0 or e > 40


def test_qpic_and_interval_cadences():
    assert eval_epochs(TrainConfig(epochs=150, eval_cadence="qpic")) == list(range(150))
    assert eval_epochs(TrainConfig(epochs=7, eval_cadence="interval", eval_every_epochs=3)) == [2, 5, 6]
    assert eval_epochs(TrainConfig(epochs=7, eval_cadence="interval", eval_every_epochs=0)) == [6]  # last only
    assert eval_epochs(TrainConfig(epochs=3, eval_cadence="hqm")) == [0, 2]  # the last epoch always


def test_best_epoch_is_the_earliest_maximum_and_labelled_on_test():
    assert best_epoch({1: 0.2, 2: 0.5, 3: 0.5, 4: None}) == 2 and best_epoch({1: None}) is None
    history = [{"epoch": 1, "selection_map": 0.2}, {"epoch": 2, "selection_map": None},
               {"epoch": 3, "selection_map": 0.4}]
    sel = summary("vcoco", history, select_best=True)
    assert sel == {"metric": "vcoco.qpic.mAP_all", "split": "test", "values": {"1": 0.2, "3": 0.4},
                   "best_epoch": 3, "best_value": 0.4, "last_epoch": 3, "selected_on_test": True}
    assert summary("vcoco", history, select_best=False)["best_epoch"] is None


def test_scores_and_headline_units():
    block = {"hico": {"qpic": {"default": {"mAP": 0.25, "mAP rare": 0.1, "mAP non-rare": 0.3}},
                      "official": {"default": {"mAP": 0.2, "mAP rare": float("nan"), "mAP non-rare": 0.5}}}}
    assert selection_score("hico", block) == 0.25 and selection_score("vcoco", block) is None
    assert headline(block) == {"hico_default_full": 20.0, "hico_default_non_rare": 50.0, "hico_qpic_full": 25.0,
                               "hico_qpic_rare": 10.0, "hico_qpic_non_rare": 30.0}
    vcoco = {"vcoco": {"official": {"role_ap_s1_24": 61.5, "role_ap_s2_24": 63.0, "agent_ap": 70.0},
                       "qpic": {"mAP_all": 0.6}}}
    assert headline(vcoco) == {"vcoco_role_ap_s1": 61.5, "vcoco_role_ap_s2": 63.0, "vcoco_agent_ap": 70.0,
                               "vcoco_qpic_map": 60.0}
    assert [curve_column(k) for k in ("train_loss_obj_ce", "train_gbs_loss_obj_ce")] == ["loss_obj_ce", "loss_gbs_obj_ce"]
