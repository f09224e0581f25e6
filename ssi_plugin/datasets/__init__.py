"""Dataset readers (JSONL, Karpathy-split JSON, COCO captions) and the records they yield."""

from ssi_plugin.datasets.records import ImageRecord

__all__ = ["ImageRecord"]
