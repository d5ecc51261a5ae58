"""mkdocs hook: the docstrings' Sphinx roles read as plain code on the site.

The package's numpydoc docstrings name other objects Sphinx's way
(``:func:`train_federated```, ``:class:`~tff_ser.task.Task```);
mkdocstrings renders the role's name as text before the code.  This hook
drops the role and Sphinx's ``~`` (show the last name only), so a reader sees
``train_federated`` and ``Task``.
"""
import re

_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj|ref|py:\w+):(<code>)~?([\w.]*?)([\w]+)(</code>)")


def _shorten(match: re.Match) -> str:
    opening, prefix, last, closing = match.groups()
    return f"{opening}{last if match.group(0).count('~') else prefix + last}{closing}"


def on_page_content(html, **kwargs):
    return _ROLE.sub(_shorten, html)
