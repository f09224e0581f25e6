"""Settings that resolve in one place: flag > environment > default."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

from platformdirs import user_cache_path
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ssi_plugin.errors import ConfigError, describe_validation_error

EngineKind = Literal["opensearch", "elasticsearch"]
Precision = Literal["int8", "float32"]


def default_cache_dir() -> Path:
    return user_cache_path("ssi-plugin")


class EngineSettings(BaseSettings):
    """How to reach a cluster. With no URL the embedded local node is used."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="forbid")

    url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("url", "SSI_ENGINE_URL", "ELASTICSEARCH_URL", "OPENSEARCH_URL"),
    )
    engine: EngineKind | None = Field(
        default=None,
        validation_alias=AliasChoices("engine", "SSI_ENGINE"),
        description="Client to use; detected from the cluster when unset.",
    )
    api_key: str | None = Field(default=None, validation_alias=AliasChoices("api_key", "SSI_API_KEY"))
    username: str | None = Field(default=None, validation_alias=AliasChoices("username", "SSI_USERNAME"))
    password: str | None = Field(default=None, validation_alias=AliasChoices("password", "SSI_PASSWORD"))
    ca_certs: Path | None = Field(default=None, validation_alias=AliasChoices("ca_certs", "SSI_CA_CERTS"))
    verify_certs: bool = Field(default=True, validation_alias=AliasChoices("verify_certs", "SSI_VERIFY_CERTS"))
    connect_timeout: float = Field(default=3.0, gt=0, validation_alias=AliasChoices("connect_timeout", "SSI_CONNECT_TIMEOUT"))
    request_timeout: float = Field(default=30.0, gt=0, validation_alias=AliasChoices("request_timeout", "SSI_REQUEST_TIMEOUT"))
    cache_dir: Path = Field(default_factory=default_cache_dir, validation_alias=AliasChoices("cache_dir", "SSI_CACHE_DIR"))

    @field_validator("url")
    @classmethod
    def _strip_trailing_slash(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"engine URL {url!r} must start with http:// or https://")
        return url

    @field_validator("ca_certs")
    @classmethod
    def _ca_file_exists(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"CA certificate file {path} does not exist")
        return path


class GeneratorSettings(BaseSettings):
    """How a generator folder is loaded to answer queries."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="forbid")

    precision: Precision = Field(
        default="int8",
        validation_alias=AliasChoices("precision", "SSI_PRECISION"),
        description="int8: the model's linear layers quantized when loaded, twice as fast alone on a CPU, Recall the "
                    "same within a query or two. float32: the arithmetic it was trained in "
                    "(``ssi_plugin.generation.precision``).",
    )


Settings = TypeVar("Settings", bound=BaseSettings)


def resolve_settings(**given: object) -> EngineSettings:
    """The engine settings of one caller: what it gives (None: not given) wins over the environment, then the defaults.

    A bad value is a ``ConfigError`` naming the setting, never a pydantic traceback.
    """
    return resolved(EngineSettings, **given)


def generator_precision(precision: Precision | None = None) -> Precision:
    """``precision`` if given, else the setting (``SSI_PRECISION``, default int8)."""
    try:
        return resolved(GeneratorSettings, precision=precision).precision
    except ConfigError as exc:
        raise ConfigError(f"{exc} (the generator's precision: SSI_PRECISION)") from None


def resolved(settings: type[Settings], **given: object) -> Settings:
    """``settings`` as ``resolve_settings`` resolves the engine's."""
    try:
        return settings(**{name: value for name, value in given.items() if value is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
