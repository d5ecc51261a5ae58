"""The README's custom-experiment example runs as written (at test size)."""
import os
import re

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
