"""``ssi-plugin serve-model``: an OpenAI-compatible chat endpoint around a local model."""

from __future__ import annotations

import click


@click.command("serve-model")
@click.option("--model", required=True, help="Hugging Face model folder or cached hub name (image-text-to-text or chat LM).")
@click.option("--gguf-file", help="Load this GGUF file inside --model's folder (needs the gguf package).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--served-name", help="The model id clients send (default: the folder or model name).")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cuda.")
@click.option("--server-api-key", "api_key", envvar="SSI_MODEL_SERVER_API_KEY",
              help="Require this bearer token [env: SSI_MODEL_SERVER_API_KEY].")
@click.option("--allow-local-images", is_flag=True,
              help="Let clients name images by local path and on loopback, private or link-local addresses (trusted clients only).")
def serve_model_command(
    model: str, gguf_file: str | None, host: str, port: int, served_name: str | None, device: str, api_key: str | None,
    allow_local_images: bool,
) -> None:
    """Serve MODEL at http://HOST:PORT/v1 (chat completions, models) for the http annotator or any OpenAI client.

    Clients' image URLs must be data: URLs or http(s) URLs of public addresses
    (downloads limited in size and time) unless --allow-local-images is given.
    """
    from ssi_plugin.annotation.chat_model import LocalChatModel
    from ssi_plugin.annotation.image_urls import ImageURLReader
    from ssi_plugin.serving.model_server import serve

    click.echo(f"Loading {model} ...", err=True)
    chat = LocalChatModel(model, device=device, gguf_file=gguf_file, images=ImageURLReader(allow_local=allow_local_images))
    click.echo(f"Serving {served_name or chat.name} at http://{host}:{port}/v1", err=True)
    serve(chat, host=host, port=port, served_name=served_name, api_key=api_key)
