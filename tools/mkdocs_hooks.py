"""mkdocs hooks: the site's home page is README.md; Sphinx roles read as plain code.

* **Home page.** ``docs/index.md`` is a placeholder: the site shows README.md
  there, its links rewritten from the repository's paths to the site's
  (``docs/hpo.md`` -> ``hpo.md``, a baseline's README -> ``baselines/paperNNN.md``,
  ``CHANGELOG.md`` -> ``changelog.md``), so the two never drift apart.  A link
  with no page on the site fails the build.
* **Roles.** The package's numpydoc docstrings name other objects Sphinx's way
  (``:func:`train_federated```, ``:class:`~tff_ser.task.Task```);
  mkdocstrings renders the role's name as text before the code.  This hook
  drops the role and Sphinx's ``~`` (show the last name only), so a reader sees
  ``train_federated`` and ``Task``.
"""
import pathlib
import re

README_LINK = re.compile(r"\]\((?!https?://)([^)#\s]+)(#[^)\s]*)?\)")
_BASELINE = re.compile(r"tff_ser/baselines/(paper\d{3})/README\.md")


def site_link(target: str) -> str:
    """README.md's link ``target`` (a repository path) as a path inside ``docs/``."""
    if target.startswith("docs/"):
        return target[len("docs/"):]
    baseline = _BASELINE.fullmatch(target)
    if baseline:
        return f"baselines/{baseline.group(1)}.md"
    if target == "CHANGELOG.md":
        return "changelog.md"
    raise ValueError(f"README.md links to {target!r}, which has no page on the docs site: link "
                     f"a page under docs/ (or teach tools/mkdocs_hooks.site_link its page)")


def readme_as_home_page(readme: str) -> str:
    """README.md's text with every relative link rewritten by :func:`site_link`."""
    return README_LINK.sub(lambda m: f"]({site_link(m.group(1))}{m.group(2) or ''})", readme)


def on_page_markdown(markdown, page, config, **kwargs):
    if page.file.src_uri != "index.md":
        return markdown
    root = pathlib.Path(config.config_file_path).parent
    return readme_as_home_page((root / "README.md").read_text(encoding="utf-8"))

_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj|ref|py:\w+):(<code>)~?([\w.]*?)([\w]+)(</code>)")


def _shorten(match: re.Match) -> str:
    opening, prefix, last, closing = match.groups()
    return f"{opening}{last if match.group(0).count('~') else prefix + last}{closing}"


def on_page_content(html, **kwargs):
    return _ROLE.sub(_shorten, html)
