"""Quiet model loading: ssi-plugin reports its own progress, transformers' bars are noise in its output.

transformers 5 draws a tqdm bar ("Loading weights: 100%|...") each time a model
loads, through its own switch ``transformers.utils.logging.disable_progress_bar``.
That switch also turns off the Hugging Face Hub's download bars, which do help
on a first download, so they are put back as they were.
"""

from __future__ import annotations


def quiet_weight_loading() -> None:
    """Turn off transformers' "Loading weights" bars for this process (idempotent, cheap after the first call).

    An explicit ``HF_HUB_DISABLE_PROGRESS_BARS=0`` asks for every bar: then nothing changes.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging

    if constants.HF_HUB_DISABLE_PROGRESS_BARS is False or not logging.is_progress_bar_enabled():
        return
    downloads_shown = not are_progress_bars_disabled()
    logging.disable_progress_bar()
    if downloads_shown:
        enable_progress_bars()
