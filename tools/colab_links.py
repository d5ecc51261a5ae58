""""Open in Colab" links and the Colab clone URL, written once the repository has a home.

Colab opens a notebook from GitHub by its address
(``https://colab.research.google.com/github/OWNER/NAME/blob/BRANCH/notebooks/X.ipynb``),
so the links need the repository's public GitHub name, which a fresh copy of
this project does not know.  Whoever publishes it runs, once::

    python tools/colab_links.py --repo OWNER/NAME [--branch main]

which puts an "Open in Colab" badge under the title of every numbered
notebook (replacing an earlier one), points each notebook's Colab install
cell at ``https://github.com/OWNER/NAME.git``, and prints the README table
of links.  Outputs of executed notebooks are kept (only the title cell's
text and the install cell's source change), and running it again with the
same arguments changes nothing.
"""
from __future__ import annotations

import pathlib
import re
import sys
from typing import Dict, List, Optional

#: The repository this script lives in (tools/ is at its root).
ROOT = pathlib.Path(__file__).resolve().parents[1]

#: GitHub's OWNER/NAME: letters, digits, '-', '_' and '.' ('.' not alone).
_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9_.-]{1,100}$")
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
#: Marks the badge line so that a later call replaces it.
BADGE_MARK = "<!-- tff_ser:colab -->"
#: The install cell's clone URL line (see any numbered notebook's first code cell).
_REPO_LINE = re.compile(r'(REPO = os\.environ\.get\("TFF_SER_REPO", ")([^"]*)("\))')
PLACEHOLDER_URL = "https://github.com/YOUR-ACCOUNT/tff_ser.git"


def check_repo(repo: str) -> str:
    """``OWNER/NAME`` as GitHub spells it, or a ValueError saying what is expected."""
    repo = (repo or "").strip()
    if repo.startswith(("https://github.com/", "http://github.com/")):
        repo = repo.split("github.com/", 1)[1]
    repo = repo.removesuffix(".git").strip("/")
    if not _REPO.match(repo) or repo.split("/")[1] in (".", ".."):
        raise ValueError(f"--repo must be the GitHub repository as OWNER/NAME (e.g. "
                         f"my-lab/tff_ser); got {repo!r}")
    return repo


def colab_url(repo: str, notebook: str, branch: str = "main") -> str:
    """Colab's address of ``notebooks/<notebook>`` in ``repo`` at ``branch``."""
    return (f"https://colab.research.google.com/github/{check_repo(repo)}/blob/{branch}/"
            f"notebooks/{pathlib.Path(notebook).name}")


def badge(repo: str, notebook: str, branch: str = "main") -> str:
    """The badge line placed under a notebook's title."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(repo, notebook, branch)}) {BADGE_MARK}"


def numbered_notebooks(root: pathlib.Path) -> List[pathlib.Path]:
    """``notebooks/NN_*.ipynb`` in order."""
    return sorted(p for p in (pathlib.Path(root) / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _source(cell) -> str:
    return cell.get("source", "")


def _set_source(cell, text: str) -> None:
    cell["source"] = text


def link_notebook(path: pathlib.Path, repo: str, branch: str = "main") -> bool:
    """Write the badge and the clone URL into one notebook; True if it changed."""
    import nbformat
    path = pathlib.Path(path)
    raw = path.read_text(encoding="utf-8")
    nb = nbformat.reads(raw, as_version=4)
    cells = nb.cells
    title = next((c for c in cells if c.get("cell_type") == "markdown"), None)
    if title is None:
        raise ValueError(f"{path} has no markdown cell to put the Colab badge in")
    lines = [ln for ln in _source(title).splitlines() if BADGE_MARK not in ln]
    head = 1 if lines and lines[0].startswith("#") else 0
    lines.insert(head, badge(repo, path.name, branch))
    _set_source(title, "\n".join(lines))
    url = f"https://github.com/{check_repo(repo)}.git"
    install = [c for c in cells if c.get("cell_type") == "code"
               and _REPO_LINE.search(_source(c))]
    if not install:
        raise ValueError(f"{path} has no Colab install cell (a line `REPO = "
                         'os.environ.get("TFF_SER_REPO", ...)`)')
    for cell in install:
        _set_source(cell, _REPO_LINE.sub(lambda m: m.group(1) + url + m.group(3),
                                         _source(cell)))
    text = nbformat.writes(nb)
    if text == raw:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def readme_table(repo: str, notebooks: List[pathlib.Path], branch: str = "main") -> str:
    """A Markdown table: notebook -> its Colab link."""
    rows = ["| notebook | Colab |", "|---|---|"]
    rows += [f"| `notebooks/{p.name}` | [![Open In Colab]({BADGE_IMAGE})]"
             f"({colab_url(repo, p.name, branch)}) |" for p in notebooks]
    return "\n".join(rows)


def link_notebooks(repo: str, *, branch: str = "main",
                   root: Optional[pathlib.Path] = None) -> Dict[str, bool]:
    """Badge and clone URL in every numbered notebook under ``root``: name -> changed."""
    root = pathlib.Path(root) if root is not None else ROOT
    repo = check_repo(repo)
    if not re.match(r"^[A-Za-z0-9._/-]+$", branch):
        raise ValueError(f"--branch must be a git branch name; got {branch!r}")
    notebooks = numbered_notebooks(root)
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (notebooks/NN_*.ipynb) under {root}")
    return {p.name: link_notebook(p, repo, branch) for p in notebooks}


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(
        description="Put 'Open in Colab' badges and the clone URL into the numbered notebooks.")
    parser.add_argument("--repo", required=True, help="the GitHub repository, OWNER/NAME")
    parser.add_argument("--branch", default="main", help="branch the links open (default main)")
    args = parser.parse_args(argv)
    try:
        changed = link_notebooks(args.repo, branch=args.branch)
    except (ValueError, FileNotFoundError) as exc:
        print(f"colab_links: {exc}", file=sys.stderr)
        return 2
    for name, did in changed.items():
        print(f"{name}: {'linked' if did else 'already linked'}")
    print("\nREADME table:\n" + readme_table(args.repo, numbered_notebooks(ROOT), args.branch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
