"""The README's Python example runs as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
# The image example's training length and width, cut to a smoke run; everything else runs as written.
SMOKE = {
    "epochs=100": "epochs=1",
    "UNet(channels=32,": "UNet(channels=8,",
    'sampler="edm_heun", steps=18)': 'sampler="edm_heun", steps=3)',
    "epochs=40": "epochs=1",
    "TemporalUNet(down_dims=(32, 64))": "TemporalUNet(down_dims=(8, 16), embedding_dim=8)",
    "env.expert(seed=0), 200,": "env.expert(seed=0), 10,",
}


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:
        for text, smoke in SMOKE.items():
            block = block.replace(text, smoke)
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["samples"].shape == (1000, 2)
    assert namespace["x"].shape == (500, 2)
    assert namespace["digits"].shape == (40, 8, 8, 1) and namespace["digits"].dtype == "uint8"
    assert (tmp_path / "digits.png").exists()
    assert namespace["history"].history["bits_per_dim"][0] > 0
    assert 0.0 <= namespace["results"].success_rate <= 1.0 and namespace["results"].observations.shape == (20, 81, 2)
