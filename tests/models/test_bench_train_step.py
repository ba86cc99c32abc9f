import json

from bench_scripts import load_bench


def test_train_step_bench_prints_one_json_line(capsys):
    load_bench("train_step").main([
        "--backbone", "resnet18", "--hidden-dim", "32", "--nheads", "4", "--enc-layers", "1", "--dec-layers", "2",
        "--ffn-dim", "64", "--queries", "5", "--image-size", "64", "--steps", "2", "--threads", "1",
    ])  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["variant"] == "qpic" and record["steps"] == 2 and 0 < record["min_s"] <= record["median_s"]
