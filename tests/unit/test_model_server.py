"""serve-model on a tiny real vision-language model: the official openai client, and the http annotator."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_models import build_tiny_vlm

from ssi_plugin.annotation.base import AnnotationFailure
from ssi_plugin.annotation.chat_model import LocalChatModel
from ssi_plugin.annotation.http import HTTPAnnotator
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.serving.model_server import create_app

openai = pytest.importorskip("openai")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "green.png"
    Image.new("RGB", (48, 32), (20, 160, 40)).save(path)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    folder = build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))
    app = create_app(LocalChatModel(str(folder)).load(), served_name="tiny", api_key="sesame")
    port = _free_port()
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started, "the model server did not start"
    yield f"http://127.0.0.1:{port}/v1"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def client(server: str):
    return openai.OpenAI(base_url=server, api_key="sesame", max_retries=0, timeout=60)


def _data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def test_the_openai_client_lists_the_model_and_gets_completions_with_an_image(client, image: Path) -> None:
    assert [m.id for m in client.models.list().data] == ["tiny"]
    reply = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": _data_url(image)}},
            {"type": "text", "text": "What is in the image?"},
        ]}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.object == "chat.completion" and reply.model == "tiny"
    assert isinstance(reply.choices[0].message.content, str)
    assert reply.choices[0].finish_reason in {"stop", "length"}
    assert 0 < reply.usage.completion_tokens <= 8 and reply.usage.prompt_tokens > 10
    again = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "What is in the image?"}],
                                           max_tokens=8, temperature=0)
    assert again.choices[0].message.content == client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "What is in the image?"}], max_tokens=8, temperature=0
    ).choices[0].message.content


def test_bad_requests_get_openai_errors(client, server: str) -> None:
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="not valid base64"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}])
    with pytest.raises(openai.BadRequestError, match="not an image"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"text").decode()}}]}])
    with pytest.raises(openai.BadRequestError, match=r"image URL '/etc/hostname.png' refused: .*does not read local files"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "/etc/hostname.png"}}]}])
    with pytest.raises(openai.BadRequestError, match=r"image URL 'http://169.254.169.254/latest' refused: .*not a public address"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest"}}]}])
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="tiny", messages=[])
    with pytest.raises(openai.BadRequestError, match="streaming"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], stream=True)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server, api_key="wrong", max_retries=0).models.list()


def test_the_http_annotator_against_the_server_ends_in_named_failures(server: str, image: Path) -> None:
    records = [
        ImageRecord(id="img", image=str(image), captions=("A green rectangle.",)),
        ImageRecord(id="missing", image=str(image.with_name("nowhere.png")), captions=("A green rectangle.",)),
    ]
    with HTTPAnnotator(server, model="tiny", api_key="sesame", max_tokens=8, retries=1, concurrency=2) as annotator:
        results = list(annotator.annotate(records))
    assert [r.reason for r in results if isinstance(r, AnnotationFailure)] == ["model_output_invalid", "image_unreadable"]
    with HTTPAnnotator(server, model="other", api_key="sesame", max_retries=0) as annotator:
        [refused] = list(annotator.annotate(records[:1]))
    assert isinstance(refused, AnnotationFailure) and refused.reason == "request_failed" and "404" in refused.detail
