"""The README's quickstart and the docs' examples run as written (at test size)."""
import glob
import os
import re

import pytest

from tff_ser.stack import has_tff

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
README = os.path.join(ROOT, "README.md")
DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))


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
    """The first Python block after ``marker`` in the one docs page that holds it."""
    pages = [p for p in DOCS if marker in open(p).read()]
    assert len(pages) == 1, f"{marker} is in {pages}, not in one docs page"
    text = open(pages[0]).read()
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


@pytest.mark.skipif(not has_tff(), reason="the reference stack's TFF process runs it")
def test_docs_own_algorithm_example_runs(small_corpus_dir, tmp_path, monkeypatch, capsys):
    from tff_ser import algorithms
    code = _block("<!-- own-algorithm-example")
    monkeypatch.chdir(tmp_path)
    try:
        exec(compile(code, "docs/guide/custom.md", "exec"), {})
    finally:
        algorithms.ALGORITHMS.pop("fedsgd", None)
    engine, algorithm, accuracy = capsys.readouterr().out.split()[-3:]
    assert (engine, algorithm) == ("tff", "fedsgd") and 0.0 <= float(accuracy) <= 1.0


def test_every_readme_link_is_a_file_and_a_page_of_the_docs_site():
    """README.md is the site's home page (tools/mkdocs_hooks.py): each relative link must name
    a file in the repository and, rewritten, a page under docs/."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "mkdocs_hooks", os.path.join(ROOT, "tools", "mkdocs_hooks.py"))
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    text = open(README).read()
    targets = [m.group(1) for m in hooks.README_LINK.finditer(text)]
    assert len(targets) > 10
    for target in targets:
        assert os.path.isfile(os.path.join(ROOT, target)), target
        assert os.path.isfile(os.path.join(ROOT, "docs", hooks.site_link(target))), target
    home = hooks.readme_as_home_page(text)
    assert "](docs/" not in home and "](tff_ser/" not in home
    with pytest.raises(ValueError, match="no page on the docs site"):
        hooks.site_link("data/README.md")
