"""Progress on stderr: plain lines off a terminal (every N steps + the last), tqdm on one."""

from __future__ import annotations

import io

from hqm.engine.progress import Progress, epoch_line


def test_plain_lines_every_n_steps_and_the_last():
    out = io.StringIO()
    bar = Progress(epoch=2, epochs=5, total=7, initial=1, every=3, enabled=True, stream=out, terminal=False)
    for step in range(6):
        bar.update(loss=1.0 + step, images_per_s=10.0)
    bar.close()
    lines = out.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "epoch 3/5 step 3/7 loss 2.0000 img/s 10.0", "epoch 3/5 step 6/7 loss 5.0000 img/s 10.0",
        "epoch 3/5 step 7/7 loss 6.0000 img/s 10.0"]  # resumed at step 1: counts continue from there
    epoch_line(2, 5, {"train_loss": 1.5, "lr": 1e-4, "selection_map": 0.25, "epoch_time": 3.0}, out)
    assert out.getvalue().splitlines()[-1].endswith("epoch 3/5 done: loss 1.5000 lr 0.0001 map 25.00 time 3.0s")


def test_tqdm_on_a_terminal_and_silence_off_rank_0():
    out = io.StringIO()
    bar = Progress(epoch=0, epochs=1, total=4, initial=0, every=1, enabled=True, stream=out, terminal=True)
    for _ in range(4):
        bar.update(loss=0.5, images_per_s=2.0)
    bar.close()
    assert "epoch 1/1" in out.getvalue() and "4/4" in out.getvalue() and "\r" in out.getvalue()
    quiet = io.StringIO()
    other = Progress(epoch=0, epochs=1, total=4, initial=0, every=1, enabled=False, stream=quiet, terminal=False)
    other.update(loss=0.5, images_per_s=2.0)
    assert quiet.getvalue() == ""
