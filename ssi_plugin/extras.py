"""Optional features and the pip extras that install them (``[image-tags]``, ``[lora]``, ``[serve-model]``, ``[demo]``).

The core install stays small; a feature whose packages are missing says which extra
brings them, instead of failing with a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ssi_plugin.errors import ExtraMissing


@contextmanager
def requires_extra(extra: str, feature: str) -> Iterator[None]:
    """Imports inside the block that fail for a missing package raise ``ExtraMissing`` naming ``extra``.

    ``feature`` is what the user asked for, in words (``"the image tagger (--image-tags)"``).
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        raise ExtraMissing(feature, extra=extra, missing=exc.name or str(exc)) from None
