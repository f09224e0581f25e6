"""An image as the query: the offline annotator reads it as it reads indexed images; bad images are named errors."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from pydantic import ValidationError

from ssi_plugin.annotation.image_urls import ImageURLReader
from ssi_plugin.errors import InputError
from ssi_plugin.generation.generator import candidate_probabilities
from ssi_plugin.search import SSIQuery
from ssi_plugin.search.image_query import QueryImageReader, image_generation
from ssi_plugin.search.plan import plan_queries, planned_lists


def _data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def reader() -> QueryImageReader:
    return QueryImageReader()


def test_a_photograph_is_read_as_the_index_reads_its_images(reader: QueryImageReader) -> None:
    from skimage import data

    cat = _data_url(Image.fromarray(data.chelsea()))
    alone = reader.annotate(cat)
    assert alone.ssi.objects == ("cat",)
    assert "cat" in alone.rationale
    captioned = reader.annotate(cat, caption="a cat sleeping on a red sofa")
    assert {"cat", "sofa"} <= set(captioned.ssi.objects) and "sleep" in captioned.ssi.actions

    generation = image_generation(captioned, caption="a cat sleeping on a red sofa")
    assert candidate_probabilities(generation.candidates) == {captioned.ssi.id: 1.0}
    assert generation.concepts == dict.fromkeys(captioned.ssi.concepts, 1.0)
    bodies = plan_queries(generation, SSIQuery(image=cat), window=50)
    assert set(bodies) == {"exact", "concepts"}  # no text: nothing for the query's words
    assert bodies["exact"]["query"]["bool"]["should"] == [{"term": {"ssi.id": {"value": captioned.ssi.id, "boost": 1.0}}}]


def test_what_is_not_an_image_is_a_clear_error(reader: QueryImageReader) -> None:
    with pytest.raises(InputError, match=r"^\[ssi\.image\]: the data URL image is not an image in a known format$"):
        reader.annotate("data:image/png;base64," + base64.b64encode(b"words, not pixels").decode())
    with pytest.raises(InputError, match=r"^\[ssi\.image\]: the image data URL is not valid base64$"):
        reader.annotate("data:image/png;base64,%%%")
    with pytest.raises(InputError, match=r"^\[ssi\.image\]: image URL '/etc/passwd' refused: not a data: or http\(s\) URL"):
        reader.annotate("/etc/passwd")
    with pytest.raises(InputError, match=r"^\[ssi\.image\]: image URL 'http://127\.0\.0\.1/cat\.png' refused: 127\.0\.0\.1 is not "
                                         r"a public address$"):
        reader.annotate("http://127.0.0.1/cat.png")


def test_an_image_over_the_limit_is_refused() -> None:
    small = QueryImageReader(urls=ImageURLReader(max_bytes=1000, local_hint=None))
    with pytest.raises(InputError, match=r"^\[ssi\.image\]: the data URL image is larger than"):
        small.annotate(_data_url(Image.effect_noise((64, 64), 50)))


def test_an_image_that_shows_nothing_known_says_so(reader: QueryImageReader) -> None:
    with pytest.raises(InputError, match=r"^\[ssi\.image\]: the image gives no identifier \(no_concept\)"):
        reader.annotate(_data_url(Image.new("RGB", (64, 64), (128, 128, 128))))


def test_the_clause_needs_text_or_an_image_and_text_for_the_text_lists() -> None:
    assert SSIQuery(image="data:image/png;base64,AAAA").query is None
    assert planned_lists(SSIQuery(image="data:image/png;base64,AAAA")) == ["exact", "concepts"]
    assert planned_lists(SSIQuery(image="data:image/png;base64,AAAA", query="a cat")) == [
        "exact", "concepts", "terms", "related", "meaning", "bm25"]
    with pytest.raises(ValidationError, match=r"requires \[query\] \(text\), \[image\], or both"):
        SSIQuery()
    with pytest.raises(ValidationError, match=r"\[bm25_field\] searches the query text"):
        SSIQuery(image="data:image/png;base64,AAAA", bm25_field="caption")
    with pytest.raises(ValidationError, match="the dense leg embeds the query text"):
        SSIQuery(image="data:image/png;base64,AAAA", hybrid=True)
    assert SSIQuery(image="data:image/png;base64,AAAA", query_vector=[0.1, 0.2]).dense_field is not None


def test_a_reader_made_by_kind_goes_to_another_process_and_reads_alike(reader: QueryImageReader) -> None:
    """``serve --workers`` sends the reader to each worker: it arrives with the same kind of annotator and limits."""
    import pickle

    from skimage import data

    from ssi_plugin.annotation.factory import AnnotatorOptions, create_annotator

    sent = pickle.loads(pickle.dumps(QueryImageReader.of_kind("caption", AnnotatorOptions(image_tags=True))))
    cat = _data_url(Image.fromarray(data.chelsea()))
    assert sent.annotate(cat, caption="a cat") == reader.annotate(cat, caption="a cat")
    small = pickle.loads(pickle.dumps(QueryImageReader.of_kind("caption", urls=ImageURLReader(max_bytes=1000, local_hint=None))))
    with pytest.raises(InputError, match=r"^\[ssi\.image\]: the data URL image is larger than"):
        small.annotate(_data_url(Image.effect_noise((64, 64), 50)))
    with pytest.raises(TypeError, match="of_kind"):
        pickle.dumps(QueryImageReader(create_annotator("caption")))
