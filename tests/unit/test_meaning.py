"""The meaning list: found images scored by how close their identifier is to the whole query, both read by the
generator's encoder (here the default generator before training: the packaged all-MiniLM-L6-v2 encoder and a
one-layer decoder built from it)."""

from __future__ import annotations

import numpy as np
import pytest
from encoders import CountingEncoder

from ssi_plugin.embedding import shared_encoder
from ssi_plugin.generation.generator import Generator, build_trie
from ssi_plugin.generation.models import DEFAULT_BASE, load_base
from ssi_plugin.generation.spec import GeneratorSpec, architecture_of, end_token_of, tokenizer_fingerprint
from ssi_plugin.search.meaning import IdentifierMeanings, identifier_phrase

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SANDCASTLE = "objects: family, sandcastle | actions: build | scene: beach"
FOUNTAIN = "objects: child, water fountain | actions: play | attributes: hot"
ROAD = "objects: construction worker, vest | actions: work | attributes: orange, two | scene: road"
FATHER = "A father and his two young children play in the sand near the water with buckets"


@pytest.fixture(scope="module")
def generator() -> Generator:
    model, tokenizer = load_base(DEFAULT_BASE, decoder_layers=1)
    spec = GeneratorSpec(architecture=architecture_of(model), end_token_id=end_token_of(tokenizer),
                         tokenizer_fingerprint=tokenizer_fingerprint(tokenizer))
    trie = build_trie(tokenizer, [(SANDCASTLE, "sandcastle"), (FOUNTAIN, "fountain"), (ROAD, "road")])
    return Generator(model, tokenizer, spec, trie)


def test_an_identifier_is_embedded_as_the_phrase_of_its_concepts() -> None:
    assert identifier_phrase(SANDCASTLE) == "family sandcastle build beach"
    assert identifier_phrase("objects: dog | scene: grass | #2") == "dog grass"


def test_the_default_generator_reads_a_text_as_all_minilm_l6_v2_does_before_training(generator: Generator) -> None:
    """Its encoder is MiniLM's, its states averaged as sentence-transformers pools them: the meaning list starts from
    MiniLM's sentence vectors, and training moves the encoder at a tenth of the decoder's rate."""
    texts = [FATHER, identifier_phrase(SANDCASTLE), "dog"]
    cosines = np.sum(generator.embed(texts) * shared_encoder().encode(texts), axis=1)
    assert cosines == pytest.approx([1.0] * len(texts), abs=1e-4)


def test_a_query_s_vector_comes_with_its_generation_as_embed_gives_it(generator: Generator) -> None:
    """Read in the decoding (no second pass of the model), and the same as the encoder reads the text alone."""
    result = generator.generate(f"  {FATHER} ", k=3)
    assert result.query_vector is not None and "query_vector" not in result.model_dump()
    assert np.asarray(result.query_vector) @ generator.embed([FATHER])[0] == pytest.approx(1.0, abs=1e-5)


def test_the_identifier_that_means_the_query_comes_first_though_it_holds_none_of_its_words(generator: Generator) -> None:
    """The fountain holds "children" and "play" of the query; the sandcastle family holds none of its words, and is
    what the query describes (the case the terms and related lists lose: a caption of the same photo, other words)."""
    meanings = IdentifierMeanings(generator.embed)
    query = generator.generate(FATHER).query_vector
    assert query is not None
    ranking = meanings.ranking(query, {"fountain": FOUNTAIN, "sandcastle": SANDCASTLE, "road": ROAD, "no-ssi": None})
    assert [doc_id for doc_id, _ in ranking] == ["sandcastle", "fountain", "road"]
    assert 0 < ranking[-1][1] < ranking[0][1] <= 1


def test_a_phrase_is_embedded_once_and_the_oldest_go_when_the_cache_is_full() -> None:
    """Identifiers that differ only by their disambiguator (images whose concepts coincide: most of a large index)
    share one phrase, so one pass of the encoder."""
    counting = CountingEncoder()
    meanings = IdentifierMeanings(counting.encode, cache=2)
    query = shared_encoder().encode(["kids building a sandcastle"])[0]
    first = meanings.ranking(query, {"a": SANDCASTLE, "b": FOUNTAIN, "c": SANDCASTLE, "e": f"{SANDCASTLE} | #2"})
    assert counting.asked == [identifier_phrase(SANDCASTLE), identifier_phrase(FOUNTAIN)]
    assert first[0][1] == first[1][1] == first[2][1] and {doc_id for doc_id, _ in first[:3]} == {"a", "c", "e"}
    again = meanings.ranking(query, {"b": FOUNTAIN, "a": SANDCASTLE})
    assert len(counting.asked) == 2 and again == [(doc_id, score) for doc_id, score in first if doc_id in ("a", "b")]
    meanings.ranking(query, {"d": ROAD})  # a third phrase: the least recently used (the fountain's) goes
    meanings.ranking(query, {"b": FOUNTAIN, "a": SANDCASTLE})
    assert counting.asked[2:] == [identifier_phrase(ROAD), identifier_phrase(FOUNTAIN)]
