"""Keep identifier -> image one-to-one within a corpus, and report how often that took work.

Two images whose annotated concepts coincide would share an identifier, and a
generated identifier could not tell them apart. The policy, applied in corpus
order (the order images are assigned; resumed work registers earlier
assignments first, so a rerun assigns the same identifiers):

1. The first image to claim an identifier keeps it unchanged.
2. A later image with the same identifier gets one *further concept* of its
   own: the first of the annotator's reserve concepts (salient concepts that
   did not fit the slot caps, in the annotator's order) whose addition gives a
   free identifier. Content disambiguates content where it can, and the result
   is still plain concept words a model can learn from the caption.
3. Failing that, the suffix segment ``#n``: the next unused n >= 2 of that identifier.

Identifiers assigned earlier never change when images are added later, so an
index grows without re-identifying what it holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field

from ssi_plugin.errors import InputError
from ssi_plugin.identifiers.ssi import SLOTS, SSI

CollisionKind = Literal["concept", "suffix"]


class Assignment(BaseModel):
    """The identifier an image received, and how its collision (if any) was resolved."""

    model_config = ConfigDict(frozen=True)

    ssi: SSI
    base: SSI
    collision: CollisionKind | None = None


class CollisionReport(BaseModel):
    """Collision figures of a corpus. ``collision_rate`` = images that needed a disambiguator / images."""

    images: int
    distinct_base_identifiers: int
    collided: int
    resolved_by_concept: int
    resolved_by_suffix: int
    largest_group: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def collision_rate(self) -> float:
        return self.collided / self.images if self.images else 0.0


class CollisionResolver:
    """Assigns each image a unique identifier following the module's policy."""

    def __init__(self) -> None:
        self._owner: dict[str, str] = {}
        self._assigned: dict[str, Assignment] = {}
        self._groups: Counter[str] = Counter()
        self._next_suffix: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._assigned)

    def register(self, image_id: str, assignment: Assignment) -> None:
        """Record an assignment made earlier (a resumed run, an existing index)."""
        owner = self._owner.get(assignment.ssi.id)
        if owner is not None and owner != image_id:
            raise InputError(f"identifier {assignment.ssi.id!r} is held by both {owner!r} and {image_id!r}")
        self._release(image_id)
        self._owner[assignment.ssi.id] = image_id
        self._assigned[image_id] = assignment
        self._groups[assignment.base.id] += 1

    def register_all(self, assignments: Iterable[tuple[str, Assignment]]) -> None:
        for image_id, assignment in assignments:
            self.register(image_id, assignment)

    def assign(self, image_id: str, ssi: SSI, *, reserve: Iterable[str] = ()) -> Assignment:
        """The identifier for ``image_id``. ``reserve``: slot-prefixed spare concepts (``objects:bench``).

        Assigning the same image the same identifier again returns the earlier
        assignment; a different identifier replaces it.
        """
        base = ssi.base
        previous = self._assigned.get(image_id)
        if previous is not None and previous.base == base:
            return previous
        self._release(image_id)
        assignment = self._resolve(base, reserve)
        self.register(image_id, assignment)
        return assignment

    def report(self) -> CollisionReport:
        kinds = Counter(a.collision for a in self._assigned.values())
        return CollisionReport(
            images=len(self._assigned),
            distinct_base_identifiers=len(self._groups),
            collided=kinds["concept"] + kinds["suffix"],
            resolved_by_concept=kinds["concept"],
            resolved_by_suffix=kinds["suffix"],
            largest_group=max(self._groups.values(), default=0),
        )

    def _resolve(self, base: SSI, reserve: Iterable[str]) -> Assignment:
        if base.id not in self._owner:
            return Assignment(ssi=base, base=base)
        for spare in reserve:
            slot, _, concept = spare.partition(":")
            if slot not in SLOTS or concept in getattr(base, slot):
                continue
            try:
                candidate = base.with_concept(slot, concept)
            except ValueError:  # a full slot or an invalid concept: try the next one
                continue
            if candidate.id not in self._owner:
                return Assignment(ssi=candidate, base=base, collision="concept")
        number = self._next_suffix.get(base.id, 2)
        while base.with_disambiguator(number).id in self._owner:
            number += 1
        self._next_suffix[base.id] = number + 1
        return Assignment(ssi=base.with_disambiguator(number), base=base, collision="suffix")

    def _release(self, image_id: str) -> None:
        previous = self._assigned.pop(image_id, None)
        if previous is None:
            return
        del self._owner[previous.ssi.id]
        self._groups[previous.base.id] -= 1
        if not self._groups[previous.base.id]:
            del self._groups[previous.base.id]
