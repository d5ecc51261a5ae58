"""The docs site renders in a real browser: the built index and API pages in headless Chromium.

``make docs`` builds the site strictly (a broken link, anchor or docstring
reference fails the build) into ``build/site``; these tests open its pages
with Debian's ``chromium`` (``--dump-dom`` after the page's scripts ran, and
a screenshot) and check what a reader sees: the page's own headings, the
navigation, API entries rendered from the numpydoc docstrings, and a
screenshot that is not blank.

Without a built site or a browser the tests skip saying what to do; CI sets
``TFF_SER_DOCS_REQUIRED=1`` (``make docs-test``), which turns such a skip
into a failure.
"""
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SITE = ROOT / "build" / "site"
REQUIRED = os.environ.get("TFF_SER_DOCS_REQUIRED", "") not in ("", "0")


def _need(ok: bool, why: str):
    if not ok:
        if REQUIRED:
            pytest.fail(why)
        pytest.skip(why)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    _need((SITE / "index.html").exists(), f"no built site in {SITE}: run `make docs`")
    path = _chromium()
    _need(path is not None, "no Chromium: `apt-get install chromium` (Debian's package)")
    return path


def _run(browser, tmp_path, *args, page):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
           *args, (SITE / page).as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _dom(browser, tmp_path, page):
    return _run(browser, tmp_path, "--dump-dom", page=page)


def test_the_index_renders_with_its_navigation_and_content(browser, tmp_path):
    dom = _dom(browser, tmp_path, "index.html")
    assert "<title>tff_ser</title>" in dom or "<title>Home - tff_ser</title>" in dom, dom[:500]
    for text in ("Two commands", "Quickstart", "Experiments and expected numbers",
                 "API reference", "User guide", "CREMA-D numbers"):
        assert text in dom, f"{text!r} missing from the rendered index"
    assert 'class="md-nav' in dom  # the theme's navigation, built by its scripts and templates
    assert "make run" in dom and "make test" in dom


def test_an_api_page_renders_the_docstrings(browser, tmp_path):
    dom = _dom(browser, tmp_path, "api/federated.html")
    assert 'id="tff_ser.federated.train_federated"' in dom
    assert 'id="tff_ser.algorithms.register_algorithm"' in dom
    assert "doc-heading" in dom and "checkpoint_every" in dom
    # the numpydoc sections became tables, not raw text
    assert "Parameters:" in dom or "doc-section-title" in dom
    assert "----------" not in dom


def test_the_pages_are_not_blank_in_a_screenshot(browser, tmp_path):
    import matplotlib.image as mpimg
    for page in ("index.html", "api/federated.html"):
        shot = tmp_path / (page.replace("/", "_") + ".png")
        _run(browser, tmp_path, f"--screenshot={shot}", "--window-size=1280,900", page=page)
        pixels = mpimg.imread(str(shot))[..., :3]
        assert pixels.shape[:2] == (900, 1280)
        # text, the header bar and the navigation: many distinct shades, not one colour
        assert np.std(pixels) > 0.05 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
