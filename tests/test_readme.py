"""The README's custom-experiment example runs as written (at test size)."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _example_code():
    text = open(README).read()
    marker = text.index("<!-- custom-example")
    match = re.search(r"```python\n(.*?)```", text[marker:], re.S)
    return match.group(1)


def test_readme_custom_experiment_runs(small_corpus_dir, tmp_path, monkeypatch, capsys):
    code = _example_code()
    assert 'SIZE = "full"' in code and "rounds=10" in code
    code = code.replace('SIZE = "full"', 'SIZE = "small"').replace("rounds=10", "rounds=2")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "generated corpus" in out and "federated" in out
    assert (tmp_path / "results/_scratch/my_run/result/result.json").exists()


def _block(marker):
    text = open(README).read()
    match = re.search(r"```python\n(.*?)```", text[text.index(marker):], re.S)
    return match.group(1)


def test_readme_own_model_example_runs(small_corpus_dir, tmp_path, monkeypatch, capsys):
    code = _block("<!-- own-model-example")
    assert "KerasModel(my_model" in code and "MODELS" not in code
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    engine, fed_acc, base_acc = capsys.readouterr().out.split()[-3:]
    assert engine == "batched" and 0.0 <= float(fed_acc) <= 1.0 and 0.0 <= float(base_acc) <= 1.0


def test_readme_fedyogi_dp_example_runs(small_corpus_dir, tmp_path, monkeypatch, capsys):
    code = _block("<!-- fedyogi-dp-example")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.split()
    assert out[0] == "tf" and "epsilon" in out and float(out[out.index("epsilon") + 1]) > 0
