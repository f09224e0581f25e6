"""ssi-plugin: generative text-to-image retrieval with Structured Semantic Identifiers.

    from ssi_plugin import SSIIndex          # connect, setup, ingest, train, search (``ssi_plugin.api``)
    from ssi_plugin import create_app        # the ASGI app of ``ssi-plugin serve``

Importing the package is cheap: no torch, no engine client is loaded until used.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["SSIIndex", "create_app"]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a tenth of the package's import time)
if TYPE_CHECKING:
    from ssi_plugin.api import SSIIndex, create_app


def __getattr__(name: str) -> object:
    """The public API, imported on first use (PEP 562) so that ``import ssi_plugin`` stays instant."""
    if name in __all__:
        from ssi_plugin import api

        return getattr(api, name)
    raise AttributeError(f"module 'ssi_plugin' has no attribute {name!r}")
