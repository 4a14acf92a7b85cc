"""The gallery examples run end to end with tiny settings and write their figures."""

import importlib.util
import os

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_conditional_digits_example(tmp_path):
    example = load("conditional_digits")
    paths = example.main(
        str(tmp_path), epochs=1, samples_per_class=1, scales=(0.0, 2.0), steps=3, hidden_units=16, num_blocks=1
    )
    for path in paths:
        assert_png(path)
    assert sorted(os.listdir(tmp_path)) == ["digits_guidance_scales.png", "digits_per_class.png"]


def test_wine_imputation_example(tmp_path):
    example = load("wine_imputation")
    errors, path = example.main(str(tmp_path), epochs=2, draws=2, steps=3, hidden_units=16, num_blocks=1)
    assert_png(path)
    assert set(errors) == {"mean imputation", "score model, replacement (Heun)", "score model, predictor-corrector"}
    assert all(np.isfinite(value) and value > 0 for value in errors.values())


def test_wine_masking_hides_thirty_percent_and_keeps_a_cell_per_row():
    example = load("wine_imputation")
    data = np.arange(178 * 13, dtype="float32").reshape(178, 13)
    train, held_out, known = example.split_and_mask(data, seed=0)
    assert len(train) + len(held_out) == 178 and known.shape == held_out.shape
    assert abs((~known).mean() - 0.3) < 0.05 and known.any(axis=1).all()


def test_ncsn_2d_example(tmp_path):
    example = load("ncsn_2d")
    fisher, weights, paths = example.main(
        str(tmp_path), steps=3, hidden_units=8, levels=3, steps_per_level=1, num_samples=16
    )
    for path in paths:
        assert_png(path)
    assert sorted(os.listdir(tmp_path)) == ["ncsn_samples.png", "ncsn_score_fields.png"]
    assert set(fisher) == {"sliced score matching", "denoising score matching"}
    assert all(np.isfinite(value) and value > 0 for value in fisher.values())
    assert set(weights) == {"data", *fisher} and all(0.0 <= w <= 1.0 for w in weights.values())


def test_ddpm_ddim_edm_digits_example(tmp_path):
    example = load("ddpm_ddim_edm_digits")
    fids, floor, paths = example.main(
        str(tmp_path), epochs=1, channels=8, num_samples=20, ddpm_steps=(4,), ddim_steps=(2, 3), edm_steps=(2,)
    )
    for path in paths:
        assert_png(path)
    assert sorted(os.listdir(tmp_path)) == ["fid_vs_nfe.png", "samples.png", "trajectory.png"]
    assert set(fids) == {
        ("DDPM ancestral", 4), ("DDIM (η = 0)", 2), ("DDIM (η = 0)", 3), ("EDM Heun", 2), ("EDM stochastic (Alg. 2)", 2)
    }
    assert all(np.isfinite(value) and value > floor > 0 for value in fids.values())


def test_vdm_digits_example(tmp_path):
    example = load("vdm_digits")
    bits, paths = example.main(str(tmp_path), epochs=1, channels=8, hidden_units=16, repeats=1, sample_steps=3)
    for path in paths:
        assert_png(path)
    assert sorted(os.listdir(tmp_path)) == ["bits_per_dim.png", "gamma.png", "samples.png"]
    # The baselines on scikit-learn's split (random_state 0): 2.44 and 2.97 bits/dim.
    assert bits["independent categorical"] == pytest.approx(2.436, abs=1e-3)
    assert bits["Gaussian (dequantized)"] == pytest.approx(2.975, abs=1e-3)
    assert all(np.isfinite(bits[name]) and bits[name] > 0 for name in ("VDM, learned γ", "VDM, fixed linear γ"))


def test_diffusion_policy_reach_example(tmp_path):
    example = load("diffusion_policy_reach")
    stats, paths = example.main(str(tmp_path), demos=8, epochs=1, down_dims=(8, 16), embedding_dim=8, rollouts=3)
    for path in paths:
        assert_png(path)
    assert sorted(os.listdir(tmp_path)) == ["rollouts.png", "routes.png"]
    assert set(stats) == {"diffusion policy", "MSE regression"}
    for values in stats.values():
        assert 0.0 <= values["success"] <= 1.0 and values["left"] + values["right"] <= 1.0
        assert values["ms per chunk"] > 0


def test_world_model_breakout_example(tmp_path):
    pytest.importorskip("minatar")
    example = load("world_model_breakout")
    scores, paths = example.main(
        str(tmp_path), train_episodes=4, epochs=1, channels=8, blocks=1, horizon=3, test_episodes=4
    )
    for path in paths:
        assert_png(path)
    assert sorted(os.listdir(tmp_path)) == ["f1_per_step.png", "rollout_strips.png"]
    for f1 in scores.values():
        assert f1.shape == (3, 4) and np.all((f1 >= 0) & (f1 <= 1))
