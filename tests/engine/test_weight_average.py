"""train.ema_decay: the bias-corrected moving average of the weights, and a real run that uses it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from hqm.config import save_run_config
from hqm.engine.checkpoint import state_path
from hqm.engine.weight_average import WeightAverage, step_decay

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import procs  # noqa: E402
import real_setup  # noqa: E402


def small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def test_average_is_the_decay_weighted_mean_of_every_steps_weights():
    decay, net = 0.8, small_net()
    average = WeightAverage(net, decay)
    seen = []
    for step in range(6):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        net.train()(torch.randn(5, 3))  # moves BatchNorm's running statistics and its counter
        seen.append({k: v.clone() for k, v in net.state_dict().items()})
        average.update(net)
        weights = [decay ** (step - i) for i in range(step + 1)]
        for key, value in average.module.state_dict().items():
            if value.is_floating_point():
                expected = sum(w * s[key] for w, s in zip(weights, seen)) / sum(weights)
                assert torch.allclose(value, expected, atol=1e-6), (step, key)
            else:  # num_batches_tracked: copied, not averaged
                assert torch.equal(value, seen[-1][key])
    assert average.updates == 6 and not average.module.training
    assert all(not p.requires_grad for p in average.module.parameters())


def test_first_update_is_the_weights_and_the_model_is_never_touched():
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    average = WeightAverage(net, 0.99)
    average.update(net)
    assert step_decay(0.99, 1) == 0.0 and step_decay(0.99, 10_000) == pytest.approx(0.99)
    assert all(torch.equal(average.module.state_dict()[k], before[k]) for k in before)
    with torch.no_grad():
        average.module[0].weight.add_(1.0)
    assert torch.equal(net[0].weight, before["0.weight"])


def test_saved_average_round_trips_and_refuses_another_decay():
    net = small_net()
    average = WeightAverage(net, 0.9)
    for _ in range(3):
        with torch.no_grad():
            net[0].weight.mul_(1.5)
        average.update(net)
    restored = WeightAverage(small_net(), 0.9)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 3
    assert all(torch.equal(a, b) for a, b in zip(restored.module.state_dict().values(),
                                                 average.module.state_dict().values()))
    with pytest.raises(ValueError, match="decay 0.9, this run 0.5"):
        WeightAverage(small_net(), 0.5).load_state_dict(average.state_dict())
    with pytest.raises(ValueError, match=r"train.ema_decay: 1.0 must be in \(0, 1\)"):
        WeightAverage(net, 1.0)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return real_setup.make_dataset(tmp_path_factory.mktemp("data") / "synthetic_hico")


def test_training_scores_and_saves_the_average_and_the_state_keeps_both(root, tmp_path, monkeypatch):
    """Every evaluation sees the average, checkpoint_last.pth is the average, and state/last.pth
    holds the raw weights (which training continues from) beside it."""
    import hqm.engine.train as engine_train
    from hqm.engine.distributed import DistEnv

    scored = []

    def record(model, *args, **kwargs):
        scored.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"hico": {}}

    monkeypatch.setattr(engine_train, "evaluate_model", record)
    cfg = real_setup.tiny_config(root, "gbs", epochs=2, ema_decay=0.7, eval_every_epochs=1)
    env = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    engine_train.run_training(cfg, tmp_path / "run", env)
    state = torch.load(state_path(tmp_path / "run"), weights_only=False)
    saved = procs.weights(tmp_path / "run")
    assert len(scored) == 2 and state["average"]["updates"] == 2 * 2  # 8 images, batch 4: 2 steps an epoch
    for weights in (scored[-1], state["average"]["module"]):
        assert all(torch.equal(saved[k], v) for k, v in weights.items())
    assert any(not torch.equal(saved[k], v) for k, v in state["model"].items() if v.is_floating_point())
    assert any(not torch.equal(scored[0][k], v) for k, v in saved.items() if v.is_floating_point())


@pytest.mark.slow
def test_a_run_with_ema_killed_mid_epoch_resumes_bit_identically(root, tmp_path):
    cfg_path = tmp_path / "run_config.yaml"
    save_run_config(real_setup.tiny_config(root, "gbs", epochs=3, ema_decay=0.7), cfg_path)
    cli = [sys.executable, "-m", "hqm.cli"]
    whole, victim = tmp_path / "whole", tmp_path / "killed"
    procs.start([*cli, "train", "--config", str(cfg_path), "--out", str(whole), "--device", "cpu"], timeout=300)
    proc = procs.start([*cli, "train", "--config", str(cfg_path), "--out", str(victim), "--device", "cpu"],
                       wait=False, timeout=300)
    procs.kill_mid_epoch(proc, victim)
    procs.start([*cli, "train", "--config", str(cfg_path), "--out", str(victim), "--device", "cpu"], timeout=300)
    procs.assert_same_run(victim, whole)
