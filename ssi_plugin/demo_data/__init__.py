"""The demo set: real photographs that ship inside installed packages, with hand-written captions.

materialize_demo_dataset(out_dir) -> Path     images + dataset.jsonl, idempotent
demo_images() -> list[DemoImage]              the bundled captions and credits
"""

from ssi_plugin.demo_data.materialize import DemoImage, demo_images, materialize_demo_dataset

__all__ = ["DemoImage", "demo_images", "materialize_demo_dataset"]
