"""The search page of ``ssi-plugin serve`` in a real browser (headless Chromium driven by Selenium), on a real engine.

``ssi-plugin serve --index I`` runs over an index of the tiny generator's images, each with a picture of one colour
on disk; one picture is gone. What a person would see is checked: the hits the API answers, as thumbnails of the
right colour, the explanation, an image as the query, the engine's error, the placeholder, a phone's width.
Screenshots are saved beside each test's temporary files.

Needs chromium and chromedriver (Debian: ``apt-get install chromium chromium-driver``); without them the tests are
skipped, unless ``SSI_REQUIRE_BROWSER=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from serve_support import serve_process
from tiny_generator import IMAGES, index_with_generator

from ssi_plugin.annotation.images import image_data_url
from ssi_plugin.engine import EngineClient
from ssi_plugin.identifiers import parse_ssi

pytestmark = pytest.mark.engine

REQUIRE_BROWSER_ENV = "SSI_REQUIRE_BROWSER"
COLOURS = {"img-1": (220, 40, 40), "img-2": (40, 170, 60), "img-3": (40, 80, 220)}
"""Each picture is one colour, so a thumbnail shows whose it is; img-4's file is gone."""
GONE = "img-4"
REMOTE = "remote"
"""A document (without identifier) whose image is a URL on this machine: serve must not fetch it for anyone."""
PLACEHOLDER_GREY = (217, 220, 225)
TIMEOUT_S = 90


@dataclass(frozen=True)
class Site:
    url: str
    index: str
    folder: Path

    def api(self, clause: dict[str, Any]) -> httpx.Response:
        """What any frontend gets for the page's own search body."""
        body = {"query": {"ssi": {**clause, "explain": True}}, "size": 24}
        return httpx.post(f"{self.url}/{self.index}/_search", json=body, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def site(engine: EngineClient, engine_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """``ssi-plugin serve`` over an index whose documents name pictures on disk (one of them gone)."""
    folder = tmp_path_factory.mktemp("page")
    index = f"test-page-{uuid.uuid4().hex[:8]}"
    index_with_generator(engine, index, folder / "cache")
    updates = []
    for doc_id in IMAGES:
        path = folder / "images" / f"{doc_id}.jpg"
        path.parent.mkdir(exist_ok=True)
        if doc_id in COLOURS:
            Image.new("RGB", (640, 480), COLOURS[doc_id]).save(path)
        updates.append({"_op_type": "update", "_index": index, "_id": doc_id, "doc": {"image": str(path)}})
    updates.append({"_index": index, "_id": REMOTE, "_source": {"image": "http://127.0.0.1:9/photo.jpg"}})
    assert all(item.ok for item in engine.bulk(updates, refresh=True))
    try:
        with serve_process("--upstream", engine_url, "--index", index, "--cache-dir", str(folder / "cache")) as (url, _):
            yield Site(url, index, folder)
    finally:
        engine.request("DELETE", f"/{index}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        missing = "chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver)"
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{missing}; {REQUIRE_BROWSER_ENV}=1 requires them")
        pytest.skip(missing)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    session = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=options)
    session.set_script_timeout(TIMEOUT_S)
    try:
        yield session
    finally:
        session.quit()


def settled(browser: Any, *, mentioning: str = "") -> str:
    """The status line once the search (the one ``mentioning`` this) has answered: hits drawn, or the error shown."""
    from selenium.webdriver.support.wait import WebDriverWait

    def done(driver: Any) -> str | bool:
        status = driver.find_element("id", "status").text
        finished = ("images for" in status and mentioning in status) or "failed" in status
        return status if finished else False

    return WebDriverWait(browser, TIMEOUT_S).until(done)


def shown_ids(browser: Any) -> list[str]:
    return [hit.get_attribute("data-id") for hit in browser.find_elements("css selector", "#hits > li.hit")]


def thumbnail_colour(browser: Any, doc_id: str) -> tuple[int, int, int]:
    """The colour a person sees near the top-left of a hit's picture, once it has loaded."""
    from selenium.webdriver.support.wait import WebDriverWait

    image = browser.find_element("css selector", f'li.hit[data-id="{doc_id}"] img')
    WebDriverWait(browser, TIMEOUT_S).until(lambda _: browser.execute_script("return arguments[0].complete && "
                                                                             "arguments[0].naturalWidth > 0", image))
    picture = Image.open(io.BytesIO(image.screenshot_as_png)).convert("RGB")
    return picture.getpixel((picture.width // 8, picture.height // 8))  # type: ignore[return-value]


def concept_support(candidates: list[dict[str, Any]]) -> dict[str, float]:
    """Each concept's share of the candidates' probability: the page highlights matched concepts with 0.5 % or more."""
    top = max(candidate["score"] for candidate in candidates)
    weights = [math.exp(candidate["score"] - top) for candidate in candidates]
    support: dict[str, float] = {}
    for candidate, weight in zip(candidates, weights, strict=True):
        for concept in parse_ssi(candidate["identifier"]).concepts:
            support[concept] = support.get(concept, 0.0) + weight / sum(weights)
    return support


def close_to(colour: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 24 for a, b in zip(colour, expected, strict=True))


def test_a_typed_query_shows_the_apis_hits_as_thumbnails_and_explains_them(site: Site, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{site.url}/_ssi/")
    active = browser.switch_to.active_element
    assert active.get_attribute("id") == "q"  # the query box has the focus: type at once
    active.send_keys("a dog catching a frisbee", Keys.ENTER)
    status = settled(browser)

    answer = site.api({"query": "a dog catching a frisbee"}).json()
    expected = [hit["_id"] for hit in answer["hits"]["hits"]]
    assert expected and shown_ids(browser) == expected
    assert browser.current_url.endswith("/_ssi/?q=a+dog+catching+a+frisbee")  # the search is a link
    assert f"{len(expected)} of {answer['hits']['total']['value']} images" in status
    for doc_id in expected:
        if doc_id in COLOURS:
            assert close_to(thumbnail_colour(browser, doc_id), COLOURS[doc_id]), doc_id
    candidates = browser.find_elements("css selector", "#candidate-list li.candidate")
    assert len(candidates) == len(answer["_ssi"]["candidates"])
    supported = concept_support(answer["_ssi"]["candidates"])
    for hit in answer["hits"]["hits"]:  # each identifier as chips, the matched concepts the candidates support highlighted
        card = browser.find_element("css selector", f'li.hit[data-id="{hit["_id"]}"]')
        chips = [chip.get_attribute("data-concept") for chip in card.find_elements("css selector", ".chips .chip")]
        assert chips == list(parse_ssi(hit["_ssi"]["identifier"]).concepts)
        highlighted = {chip.get_attribute("data-concept") for chip in card.find_elements("css selector", ".chip.matched")}
        assert highlighted == {concept for concept in hit["_ssi"]["matched_concepts"] if supported.get(concept, 0) >= 0.005}
    assert any(browser.find_elements("css selector", ".chip.matched"))
    first = answer["hits"]["hits"][0]
    card = browser.find_element("css selector", f'li.hit[data-id="{first["_id"]}"]')
    render_ms = float(browser.execute_script("return document.body.dataset.renderMs"))
    browser.save_screenshot(str(tmp_path / "search-page.png"))

    # Keyboard only: from the query box, Tab reaches the button, the image picker, then the first hit's explanation.
    order = []
    keyboard = ActionChains(browser)
    for _ in range(4):
        keyboard.send_keys(Keys.TAB).perform()
        focused = browser.switch_to.active_element
        order.append(focused.get_attribute("id") or focused.tag_name)
        assert browser.execute_script("const s = getComputedStyle(arguments[0]); return s.outlineStyle !== 'none' && "
                                      "parseFloat(s.outlineWidth) >= 2", focused), order  # the focus is visible
        if focused.tag_name == "summary":
            break
    assert order[:2] == ["button", "image"] and order[-1] == "summary", order
    keyboard.send_keys(Keys.ENTER).perform()
    explanation = card.find_element("css selector", "details.why")
    assert explanation.get_attribute("open") is not None
    lists = [row.find_element("css selector", ".list").text for row in explanation.find_elements("css selector", ".shares li")]
    assert lists == list(first["_ssi"]["shares"])
    browser.save_screenshot(str(tmp_path / "explained.png"))

    browser.refresh()  # a reload (or a shared link) runs the same search
    settled(browser)
    assert shown_ids(browser) == expected
    requested = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert requested and all(name.startswith(site.url) for name in requested)  # nothing from another host
    print(f"\nrender after the answer: {render_ms:.1f} ms")
    assert render_ms <= 1000


def test_a_picture_whose_file_is_gone_shows_the_placeholder_and_the_hit_stays(site: Site, browser: Any,
                                                                              tmp_path: Path) -> None:
    browser.get(f"{site.url}/_ssi/?q=a+child+kicking+a+ball+in+the+street")
    settled(browser)
    assert GONE in shown_ids(browser)
    assert close_to(thumbnail_colour(browser, GONE), PLACEHOLDER_GREY)
    browser.save_screenshot(str(tmp_path / "placeholder.png"))

    gone = httpx.get(f"{site.url}/_ssi/thumb/{site.index}/{GONE}")
    assert gone.status_code == 200 and gone.headers["content-type"].startswith("image/svg+xml")
    assert "cannot be read" in gone.headers["x-ssi-placeholder"]
    shown = httpx.get(f"{site.url}/_ssi/thumb/{site.index}/img-1")
    assert shown.headers["content-type"] == "image/jpeg" and max(Image.open(io.BytesIO(shown.content)).size) == 256
    other = httpx.get(f"{site.url}/_ssi/thumb/{site.index}-other/img-1")  # only the served index's documents
    assert other.status_code == 400 and site.index in other.json()["error"]["reason"]
    remote = httpx.get(f"{site.url}/_ssi/thumb/{site.index}/{REMOTE}")
    assert remote.headers["x-ssi-placeholder"].endswith("refused: 127.0.0.1 is not a public address")
    missing = httpx.get(f"{site.url}/_ssi/thumb/{site.index}/no-such-doc")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "resource_not_found_exception"


def test_an_uploaded_image_is_the_query(site: Site, browser: Any, tmp_path: Path) -> None:
    from skimage import data

    photo = tmp_path / "cat.png"
    Image.fromarray(data.chelsea()).save(photo)  # a photograph of a cat, shipped with scikit-image
    browser.get(f"{site.url}/_ssi/")
    browser.find_element("id", "image").send_keys(str(photo))
    status = settled(browser)
    assert "the image cat.png" in status

    answer = site.api({"image": image_data_url(str(photo))}).json()
    assert "objects: cat" in answer["_ssi"]["query_image"]["identifier"]
    assert shown_ids(browser) == [hit["_id"] for hit in answer["hits"]["hits"]]
    assert shown_ids(browser)[0] == "img-3"  # the cat on the sofa
    assert "Read from the image: objects: cat" in browser.find_element("id", "query-image-reading").text
    browser.save_screenshot(str(tmp_path / "image-query.png"))

    browser.get(f"{site.url}/_ssi?q=a+cat")  # the same photograph dropped on the page, with a caption typed before
    settled(browser)
    browser.execute_script("""
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const dropped = new DataTransfer();
        dropped.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
        document.dispatchEvent(new DragEvent("drop", {dataTransfer: dropped, bubbles: true, cancelable: true}));
    """, base64.b64encode(photo.read_bytes()).decode())
    assert "the image dropped.png and “a cat”" in settled(browser, mentioning="dropped.png")
    captioned = site.api({"image": image_data_url(str(photo)), "query": "a cat"}).json()
    assert shown_ids(browser) == [hit["_id"] for hit in captioned["hits"]["hits"]]


def test_a_bad_query_shows_the_engines_error(site: Site, browser: Any, tmp_path: Path) -> None:
    browser.get(f"{site.url}/_ssi/?index={site.index}-missing&q=a+dog")
    settled(browser)
    shown = browser.find_element("id", "error")
    assert shown.is_displayed()
    answer = httpx.post(f"{site.url}/{site.index}-missing/_search", json={"query": {"ssi": {"query": "a dog"}}}).json()
    cause = answer["error"]["root_cause"][0]
    assert shown.text == f"{answer['status']} {cause['type']}: {cause['reason']}"
    assert cause["type"] == "index_not_found_exception"

    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are words, not pixels")
    browser.get(f"{site.url}/_ssi/")
    browser.find_element("id", "image").send_keys(str(not_an_image))
    settled(browser)
    assert browser.find_element("id", "error").is_displayed()
    message = browser.find_element("id", "error").text
    assert message.startswith("400 illegal_argument_exception: [ssi.image]") and "not an image" in message
    assert shown_ids(browser) == []
    browser.save_screenshot(str(tmp_path / "error.png"))


def test_at_a_phones_width_the_grid_fits(site: Site, browser: Any, tmp_path: Path) -> None:
    browser.set_window_size(390, 844)
    try:
        browser.get(f"{site.url}/_ssi/?q=a+dog")
        settled(browser)
        columns = browser.execute_script("return getComputedStyle(document.getElementById('hits'))"
                                         ".gridTemplateColumns.split(' ').length")
        overflow = browser.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        browser.save_screenshot(str(tmp_path / "phone.png"))
    finally:
        browser.set_window_size(1280, 1000)
    assert columns == 2
    assert overflow <= 0


def test_the_page_is_small_and_loads_nothing_from_elsewhere(site: Site) -> None:
    page = httpx.get(f"{site.url}/_ssi/")
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    assert f'content="{site.index}"' in page.text  # the served index is the page's default
    assets = ["assets/page.js", "assets/page.css", "assets/placeholder.svg"]
    sizes = {name: len(httpx.get(f"{site.url}/_ssi/{name}").content) for name in assets}
    total = len(page.content) + sum(sizes.values())
    print(f"\npage assets: {total} bytes ({json.dumps(sizes)})")
    assert total <= 200 * 1024
