"""The http annotator's network behaviour against a scripted OpenAI-compatible endpoint (httpx transport)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from ssi_plugin.annotation.base import Annotation, AnnotationFailure
from ssi_plugin.annotation.http import HTTPAnnotator
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.errors import ConfigError

ANSWER = '{"objects": ["dog"], "actions": ["run"], "scene": ["park"], "rationale": "A dog runs in a park."}'


def _completion(content: str) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


class Endpoint:
    """Answers each request from a list of responses (or exceptions), and records the requests."""

    def __init__(self, *replies: httpx.Response | Exception, delay: float = 0.0) -> None:
        self.replies = list(replies)
        self.requests: list[dict] = []
        self.delay = delay
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append({"url": str(request.url), "auth": request.headers.get("authorization"), **json.loads(request.content)})
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        if isinstance(reply, Exception):
            raise reply
        return reply


def _annotator(endpoint: Endpoint, **options) -> HTTPAnnotator:
    options = {"model": "m", "backoff": 0.01, **options}
    return HTTPAnnotator("http://models.test/v1", transport=httpx.MockTransport(endpoint), **options)


def _records(n: int, image: str | None = None) -> list[ImageRecord]:
    return [ImageRecord(id=str(i), image=image, captions=(f"A dog runs in the park, picture {i}.",)) for i in range(n)]


def test_a_valid_answer_becomes_an_annotation_and_the_image_travels_inline(tmp_path: Path) -> None:
    from PIL import Image

    image = tmp_path / "dog.jpg"
    Image.new("RGB", (8, 8), (120, 80, 40)).save(image)
    endpoint = Endpoint(_completion(ANSWER))
    [result] = list(_annotator(endpoint, api_key="k").annotate(_records(1, str(image))))
    assert isinstance(result, Annotation) and result.ssi.id == "objects: dog | actions: run | scene: park"
    request = endpoint.requests[0]
    assert request["url"] == "http://models.test/v1/chat/completions" and request["auth"] == "Bearer k"
    assert request["model"] == "m" and request["temperature"] == 0.0
    image_part, text_part = request["messages"][0]["content"]
    assert image_part["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "<caption>A dog runs in the park, picture 0.</caption>" in text_part["text"]


def test_rate_limits_and_server_errors_are_retried_with_backoff() -> None:
    endpoint = Endpoint(
        httpx.Response(429, headers={"retry-after": "0"}, json={"error": {"message": "slow down"}}),
        httpx.Response(503, text="busy"),
        httpx.ConnectError("refused"),
        _completion(ANSWER),
    )
    [result] = list(_annotator(endpoint, max_retries=3).annotate(_records(1)))
    assert isinstance(result, Annotation)
    assert len(endpoint.requests) == 4


def test_requests_that_keep_failing_or_are_refused_fail_the_record_by_name() -> None:
    down = Endpoint(httpx.ConnectError("refused"))
    [result] = list(_annotator(down, max_retries=2).annotate(_records(1)))
    assert isinstance(result, AnnotationFailure) and result.reason == "request_failed"
    assert "after 3 tries" in result.detail and len(down.requests) == 3
    refused = Endpoint(httpx.Response(400, json={"error": {"message": "context too long"}}))
    [result] = list(_annotator(refused, max_retries=5).annotate(_records(1)))
    assert isinstance(result, AnnotationFailure) and "400: context too long" in result.detail
    assert len(refused.requests) == 1
    slow = Endpoint(httpx.ReadTimeout("slow"))
    [result] = list(_annotator(slow, max_retries=0, timeout=2).annotate(_records(1)))
    assert isinstance(result, AnnotationFailure) and "within 2 s" in result.detail
    garbage = Endpoint(httpx.Response(200, text="<html>proxy error</html>"))
    [result] = list(_annotator(garbage).annotate(_records(1)))
    assert isinstance(result, AnnotationFailure) and result.reason == "request_failed" and "not a chat completion" in result.detail


def test_bad_answers_are_retried_then_rejected() -> None:
    endpoint = Endpoint(_completion("I am a helpful assistant."), _completion(ANSWER))
    [result] = list(_annotator(endpoint).annotate(_records(1)))
    assert isinstance(result, Annotation)
    assert endpoint.requests[1]["temperature"] > 0 and endpoint.requests[1]["messages"][1]["role"] == "assistant"
    never = Endpoint(_completion('{"objects": []}'))
    [result] = list(_annotator(never, retries=2).annotate(_records(1)))
    assert isinstance(result, AnnotationFailure) and result.reason == "model_output_invalid"
    assert len(never.requests) == 3


def test_no_more_than_concurrency_requests_are_in_flight() -> None:
    endpoint = Endpoint(_completion(ANSWER), delay=0.05)
    results = list(_annotator(endpoint, concurrency=3, batch_size=12).annotate(_records(12)))
    assert all(isinstance(r, Annotation) for r in results)
    assert endpoint.most_in_flight == 3


def test_an_endpoint_must_be_a_url() -> None:
    with pytest.raises(ConfigError, match="must start with http"):
        HTTPAnnotator("localhost:8000", model="m")


def test_the_factory_builds_the_http_annotator_and_names_what_is_missing() -> None:
    from ssi_plugin.annotation import AnnotatorOptions, create_annotator

    options = AnnotatorOptions(model="m", endpoint="http://x/v1", text_only=True, concurrency=2, check_images=False)
    annotator = create_annotator("http", options)
    assert isinstance(annotator, HTTPAnnotator) and not annotator.sends_images and annotator.concurrency == 2
    with pytest.raises(ConfigError, match="needs --endpoint"):
        create_annotator("http", AnnotatorOptions(model="m"))
    with pytest.raises(ConfigError, match="needs --model"):
        create_annotator("mllm")
    with pytest.raises(ConfigError, match="does not use --image-tags"):
        create_annotator("mllm", AnnotatorOptions(model="m", image_tags=True))
    with pytest.raises(ConfigError, match="unknown annotator"):
        create_annotator("magic")
