"""An index of SSI documents with a tiny random generator in the place ``train`` would leave it.

The generator is built from a config in seconds; its trie holds the index's
identifiers, so whatever it writes names a real image. Tests built on it check
wiring and formats, not retrieval quality.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tiny_models import tiny_model

from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.layout import cluster_layout, index_body, install_layout
from ssi_plugin.generation.generator import build_trie, save_folder
from ssi_plugin.generation.spec import GeneratorSpec, end_token_of, tokenizer_fingerprint
from ssi_plugin.identifiers import SSI, SSIRecord
from ssi_plugin.indexing.trie import default_model_dir

IMAGES = {
    "img-1": (SSI(objects=("dog", "frisbee"), actions=("catch",), scene=("park",)), "a dog catching a frisbee in a park"),
    "img-2": (SSI(objects=("dog",), actions=("run",), scene=("beach",)), "a dog running on the beach"),
    "img-3": (SSI(objects=("cat", "sofa"), actions=("sleep",)), "a cat asleep on a sofa"),
    "img-4": (SSI(objects=("ball", "child"), actions=("kick",), scene=("street",)), "a child kicking a ball in the street"),
}


def index_with_generator(engine: EngineClient, index: str, cache_dir: Path, *, settings: Mapping[str, Any] | None = None) -> Path:
    """Fill ``index`` with IMAGES and save a generator for it under ``cache_dir``; return the generator folder.

    ``settings``: the index's own (default: no replica, as a single node can hold).
    """
    install_layout(engine)
    body = index_body(cluster_layout(engine).resources)
    own = dict(settings) if settings is not None else {"number_of_replicas": 0}
    engine.request("PUT", f"/{index}", body={**body, "settings": {**body["settings"], **own}})
    actions = (
        {
            "_index": index,
            "_id": doc_id,
            "_source": {
                "caption": caption,
                "ssi": SSIRecord(id=doc_id, ssi=ssi, rationale="Test.", annotator="test", version="1").index_fields(),
            },
        }
        for doc_id, (ssi, caption) in IMAGES.items()
    )
    outcomes = list(engine.bulk(actions, refresh=True))
    assert all(item.ok for item in outcomes), [item.error for item in outcomes if not item.ok]
    model, tokenizer = tiny_model([*(ssi.id for ssi, _ in IMAGES.values()), *(caption for _, caption in IMAGES.values())])
    spec = GeneratorSpec(
        architecture="seq2seq", end_token_id=end_token_of(tokenizer), tokenizer_fingerprint=tokenizer_fingerprint(tokenizer)
    )
    trie = build_trie(tokenizer, [(ssi.id, doc_id) for doc_id, (ssi, _) in IMAGES.items()])
    folder = default_model_dir(cache_dir, index)
    save_folder(folder, model=model, tokenizer=tokenizer, spec=spec, trie=trie)
    return folder
