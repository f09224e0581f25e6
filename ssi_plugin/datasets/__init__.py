"""Datasets: readers for JSONL, Karpathy-split JSON and COCO captions, the JSONL writer, the synthetic corpus.

read_dataset(path, *, images_dir=None, split=None, format=None) -> Iterator[ImageRecord]
counted_dataset(path, *, images_dir=None, split=None, limit=None) -> (Iterator[ImageRecord], total)
write_jsonl(records, path) -> int
generate_synthetic_corpus(out_dir, n, *, seed, captions_per_image=5, with_images=True) -> Path
"""

from ssi_plugin.datasets.jsonl import write_jsonl
from ssi_plugin.datasets.reader import DATASET_FILE, DatasetFormat, counted_dataset, dataset_file, detect_format, read_dataset
from ssi_plugin.datasets.records import ImageRecord
from ssi_plugin.datasets.synthetic import generate_synthetic_corpus

__all__ = [
    "DATASET_FILE",
    "DatasetFormat",
    "ImageRecord",
    "counted_dataset",
    "dataset_file",
    "detect_format",
    "generate_synthetic_corpus",
    "read_dataset",
    "write_jsonl",
]
