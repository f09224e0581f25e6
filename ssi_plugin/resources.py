"""Find the project folders that ship beside the package.

In a source checkout they are top-level folders (``integration/``,
``index_templates/``); an installed wheel carries them inside the package as
``ssi_plugin/_integration`` and ``ssi_plugin/_index_templates``.
"""

from __future__ import annotations

from pathlib import Path

from ssi_plugin.errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent


def project_dir(name: str) -> Path:
    """The shipped folder ``name`` (``"integration"`` or ``"index_templates"``)."""
    for candidate in (_PACKAGE_DIR / f"_{name}", _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"the {name}/ folder of ssi-plugin is missing next to {_PACKAGE_DIR}; reinstall the package")
