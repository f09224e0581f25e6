"""An image's identifier with its rationale and provenance: one line of an annotation file.

The line's ``ssi`` object has the layout of the index's ``ssi`` field, so a
producer can index it as it is::

    {"id": "img-1",
     "ssi": {"id": "objects: dog, frisbee | actions: catch | scene: park",
             "objects": ["dog", "frisbee"], "actions": ["catch"], "attributes": [], "scene": ["park"],
             "concepts": ["objects:dog", "objects:frisbee", "actions:catch", "scene:park"],
             "rationale": "The caption names a dog catching a frisbee in a park.",
             "annotator": "caption", "version": "caption/1 en_core_web_sm 3.8.0"},
     "caption": "A dog catches a frisbee in the park.",
     "collision": null}

``collision`` is null, or ``{"kind": "concept" | "suffix", "base": <identifier before disambiguation>}``.
Reading a line back trusts only ``ssi.id`` (parsed strictly); the slot arrays are derived.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ssi_plugin.identifiers.collisions import Assignment, CollisionKind
from ssi_plugin.identifiers.normalize import normalize_rationale
from ssi_plugin.identifiers.ssi import SSI, parse_ssi


class SSIRecord(BaseModel):
    """One annotated image."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    ssi: SSI
    rationale: str
    annotator: str = Field(min_length=1)
    version: str = Field(min_length=1)
    caption: str | None = None
    base: SSI | None = None
    collision: CollisionKind | None = None

    @field_validator("rationale")
    @classmethod
    def _one_sentence(cls, text: str) -> str:
        sentence = normalize_rationale(text)
        if sentence is None:
            raise ValueError("the rationale is empty")
        return sentence

    @property
    def assignment(self) -> Assignment:
        return Assignment(ssi=self.ssi, base=self.base or self.ssi.base, collision=self.collision)

    def index_fields(self) -> dict[str, Any]:
        """The document's ``ssi`` object: identifier, slot arrays, slot-prefixed concepts, disambiguator, rationale, provenance.

        What the ``ssi-derive`` pipeline derives from ``id`` is all here too, for clusters that cannot run it.
        """
        return {
            "id": self.ssi.id,
            **{slot: list(concepts) for slot, concepts in self.ssi.slots().items()},
            "concepts": list(self.ssi.concepts),
            **({"disambiguator": self.ssi.disambiguator} if self.ssi.disambiguator else {}),
            "rationale": self.rationale,
            "annotator": self.annotator,
            "version": self.version,
        }

    def to_line(self) -> dict[str, Any]:
        collision = None if self.collision is None else {"kind": self.collision, "base": (self.base or self.ssi).id}
        return {"id": self.id, "ssi": self.index_fields(), "caption": self.caption, "collision": collision}

    @classmethod
    def from_line(cls, line: dict[str, Any]) -> SSIRecord:
        """Inverse of ``to_line``; raises ``InvalidIdentifier`` or ``pydantic.ValidationError`` on a bad line."""
        fields = line["ssi"]
        collision = line.get("collision") or {}
        return cls(
            id=line["id"],
            ssi=parse_ssi(fields["id"]),
            rationale=fields["rationale"],
            annotator=fields["annotator"],
            version=fields["version"],
            caption=line.get("caption"),
            base=parse_ssi(collision["base"]) if collision else None,
            collision=collision.get("kind"),
        )
