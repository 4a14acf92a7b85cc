"""The table simulator from the command line: a mixed-type CSV in, typed CSV rows out."""

import numpy as np
import pandas as pd
import pytest

from keras_score.cli import main

TINY = ["--steps", "40", "--hidden-units", "32", "--blocks", "1", "--batch-size", "64"]


def mixed_csv(path, n=200, seed=0):
    """Strings, integers, booleans, dates, zero-inflated amounts and missing cells."""
    rng = np.random.default_rng(seed)
    amount = np.where(rng.random(n) < 0.6, 0.0, rng.exponential(3, size=n))
    lines = ["gender,age,member,joined,amount,score"]
    for i in range(n):
        score = "NA" if rng.random() < 0.25 else f"{rng.normal(50, 10):.1f}"
        day = pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
        lines.append(
            f"{rng.choice(['F', 'M'])},{rng.integers(18, 80)},{rng.choice(['yes', 'no'])},"
            f"{day:%d.%m.%Y},{amount[i]:.2f},{score}"
        )
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    data = mixed_csv(folder / "records.csv")
    model = str(folder / "records.keras")
    assert main(["train", data, "--out", model, *TINY]) == 0
    return data, model


def test_train_prints_the_schema_and_samples_typed_rows(trained, tmp_path, capsys):
    data, model = trained
    out = tmp_path / "synthetic.csv"
    assert main(["sample", model, "-n", "300", "--out", str(out), "--steps", "6", "--batch-size", "128"]) == 0
    real, synthetic = pd.read_csv(data, keep_default_na=False), pd.read_csv(out, keep_default_na=False)
    text = out.read_bytes()
    assert b"\r" not in text and text.splitlines()[0] == open(data, "rb").readline().strip()
    assert len(synthetic) == 300 and list(synthetic.columns) == list(real.columns)
    assert set(synthetic.gender) <= {"F", "M"} and set(synthetic.member) <= {"yes", "no"}
    assert synthetic.age.dtype == np.int64 and synthetic.age.between(real.age.min(), real.age.max()).all()
    days = pd.to_datetime(synthetic.joined, format="%d.%m.%Y")  # written back in the input's format
    assert days.between(pd.Timestamp("2021-01-01"), pd.Timestamp("2021-10-28")).all()
    assert synthetic.amount.min() >= 0 and (synthetic.amount == 0).mean() > 0.2  # zeros come back
    assert abs((synthetic.score == "NA").mean() - (real.score == "NA").mean()) < 0.2  # 40 steps of training
    scores = pd.to_numeric(synthetic.score[synthetic.score != "NA"])
    assert np.all(np.round(scores, 1) == scores)


def test_inspect_and_where(trained, tmp_path, capsys):
    data, model = trained
    capsys.readouterr()
    assert main(["inspect", data, "--schema-out", str(tmp_path / "schema.json")]) == 0
    out = capsys.readouterr().out
    assert "200 rows x 6 columns" in out and "gender: categorical, 2 values (F, M)" in out
    assert "member: boolean" in out and "joined: datetime" in out and "score: continuous" in out
    assert (tmp_path / "schema.json").exists()
    women = tmp_path / "women.csv"
    assert main(["sample", model, "-n", "20", "--where", "gender=F", "--where", "score=NA", "--out", str(women), "--steps", "4"]) == 0
    rows = pd.read_csv(women, keep_default_na=False)
    assert (rows.gender == "F").all() and (rows.score == "NA").all()
    assert main(["sample", model, "-n", "2", "--where", "gender=X", "--out", str(tmp_path / "x.csv")]) == 2
    assert "takes one of F, M" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_schema_override_and_the_privacy_check(trained, tmp_path, capsys):
    data, model = trained
    (tmp_path / "schema.json").write_text('{"age": "discrete"}')
    out = str(tmp_path / "m.keras")
    assert main(["train", data, "--out", out, "--schema", str(tmp_path / "schema.json"), "--steps", "2", *TINY[2:]]) == 0
    assert "age: discrete" in capsys.readouterr().out
    assert main(["evaluate", model, data, "--train", data, "-n", "50", "--steps", "4", "--divergence", "hutchinson"]) == 0
    report = capsys.readouterr().out
    assert "closest training record: median distance" in report and "held-out rows" in report
    assert main(["train", data, "--out", out, "--overwrite", "--schema", str(tmp_path / "nope.json"), *TINY]) == 2
    assert "--schema" in capsys.readouterr().err


def test_train_checkpoints_and_the_same_command_resumes(tmp_path, capsys):
    data = mixed_csv(tmp_path / "data.csv", n=60)
    folder = tmp_path / "run"
    command = ["train", data, "--out", str(tmp_path / "m.keras"), "--steps", "4", *TINY[2:]]
    command += ["--checkpoint", str(folder), "--checkpoint-every", "2"]
    assert main(command) == 0
    assert (folder / "checkpoint.json").exists() and sorted(p.name for p in folder.glob("step-*")) == [
        "step-000000002.keras",
        "step-000000004.keras",
    ]
    capsys.readouterr()
    assert main([*command, "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert f"resuming from the checkpoint of step 4 in {folder}" in out and "trained 4 steps" in out
    assert main([*command[:4], "--steps", "8", *command[6:], "--overwrite"]) == 1  # other steps: other rows
    assert "error: --checkpoint" in capsys.readouterr().err
