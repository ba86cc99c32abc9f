import pytest
import torch

from hqm.engine.sampler import MicroBatchSampler, SeededItems, StepPlan
from hqm.errors import HqmError


def plan(world=1, rank=0, micro=2, size=23, batch=8, seed=3):
    return StepPlan(size, batch, micro, world, rank, seed)


def test_order_depends_on_seed_and_epoch_only():
    assert torch.equal(plan().epoch_order(1), plan(world=4, rank=3, micro=1).epoch_order(1))
    assert not torch.equal(plan().epoch_order(1), plan().epoch_order(2))
    assert not torch.equal(plan().epoch_order(1), plan(seed=4).epoch_order(1))


def test_steps_are_identical_across_world_sizes_and_drop_the_tail():
    single = plan(world=1, micro=2)
    assert single.steps_per_epoch == 2 and single.accumulation_steps == 4
    for step in range(single.steps_per_epoch):
        whole = [i for mb in single.micro_batches(0, step) for i, _ in mb]
        ranks = [[i for mb in plan(world=2, rank=r, micro=2).micro_batches(0, step) for i, _ in mb]
                 for r in range(2)]
        assert ranks[0] + ranks[1] == whole
        assert not set(ranks[0]) & set(ranks[1])
    seen = [i for s in range(2) for mb in single.micro_batches(0, s) for i, _ in mb]
    assert len(set(seen)) == 16  # 23 images, global batch 8: 7 dropped, none repeated


def test_seeds_follow_the_image_not_the_rank():
    a = dict(x for mb in plan(world=1).micro_batches(0, 0) for x in mb)
    b = dict(x for r in range(2) for mb in plan(world=2, rank=r).micro_batches(0, 0) for x in mb)
    assert a == b


def test_resume_skips_exactly_the_consumed_prefix():
    p = plan(world=2, rank=1, micro=2, size=40)
    full = list(MicroBatchSampler(p, epoch=5))
    tail = list(MicroBatchSampler(p, epoch=5, start_step=3))
    assert len(full) == len(MicroBatchSampler(p, 5)) == p.steps_per_epoch * p.accumulation_steps
    assert tail == full[3 * p.accumulation_steps:]


def test_indivisible_global_batch_is_an_error():
    with pytest.raises(HqmError, match="global_batch_size: 8 is not divisible by world_size 3"):
        plan(world=3)
    with pytest.raises(HqmError, match="exceeds the 5 training images"):
        plan(size=5)


class Noisy(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.rand(3)


def test_seeded_items_are_reproducible_and_leave_global_rng_alone():
    items = SeededItems(Noisy())
    torch.manual_seed(0)
    before = torch.get_rng_state()
    x, y = items[(1, 7)], items[(1, 7)]
    assert torch.equal(x, y) and not torch.equal(x, items[(1, 8)])
    assert torch.equal(torch.get_rng_state(), before)


def test_seeded_items_seed_only_the_cpu_generator(monkeypatch):
    """torch.manual_seed would also reseed the CUDA generators, which fork_rng(devices=[]) does not
    restore: with main-process loading on a GPU, every image would reset the model's dropout stream."""
    def cuda_seeded(*args, **kwargs):
        raise AssertionError("a data item reseeded the CUDA generators")

    monkeypatch.setattr(torch.cuda, "manual_seed_all", cuda_seeded)
    monkeypatch.setattr(torch.cuda, "manual_seed", cuda_seeded)
    item = SeededItems(Noisy())[(3, 11)]
    generator = torch.Generator().manual_seed(11)
    assert torch.equal(item, torch.rand(3, generator=generator))  # the CPU stream is seeded as before
