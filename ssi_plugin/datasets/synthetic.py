"""A synthetic corpus of any size: drawn images with known contents, paraphrased captions from templates.

For scale and throughput work, never for quality claims. Each record is made
from its own random stream (seed and index), so record ``i`` is the same
whatever ``n`` is, and a corpus of 1,000 is the first 1,000 of a corpus of
100,000. The contents (scene; objects with colour, size and action, as lemmas)
are written on every line under ``contents``, so an annotator can be checked
against the truth.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from ssi_plugin.datasets.jsonl import write_jsonl
from ssi_plugin.datasets.reader import DATASET_FILE
from ssi_plugin.datasets.records import ImageRecord
from ssi_plugin.errors import InputError
from ssi_plugin.progress import progress_bar

if TYPE_CHECKING:
    from PIL import Image, ImageDraw

GENERATOR_VERSION = 1
MANIFEST = "corpus.json"

# --- vocabulary ------------------------------------------------------------------------------------
# Each concept: its lemma (the key), the words captions may use for it, and what drawing needs.

COLOURS: dict[str, tuple[tuple[str, ...], tuple[int, int, int]]] = {
    "red": (("red", "crimson", "scarlet"), (205, 35, 35)),
    "blue": (("blue", "cobalt"), (35, 75, 200)),
    "green": (("green", "emerald"), (40, 150, 60)),
    "yellow": (("yellow", "golden"), (240, 205, 40)),
    "orange": (("orange", "tangerine"), (240, 130, 30)),
    "purple": (("purple", "violet"), (130, 50, 160)),
    "pink": (("pink", "rosy"), (240, 130, 180)),
    "white": (("white", "pale"), (245, 245, 245)),
    "black": (("black", "dark"), (25, 25, 25)),
    "brown": (("brown", "chocolate"), (120, 75, 40)),
}

SIZES: dict[str, tuple[tuple[str, ...], float]] = {
    "small": (("small", "little", "tiny"), 0.14),
    "large": (("large", "big", "huge"), 0.26),
}

ACTIONS: dict[str, tuple[str, ...]] = {
    "roll": ("rolling",),
    "bounce": ("bouncing",),
    "rest": ("resting", "lying"),
    "fly": ("flying", "soaring", "gliding"),
    "sail": ("sailing",),
    "float": ("floating", "drifting", "bobbing"),
    "drive": ("driving", "speeding", "moving"),
    "park": ("parked", "standing still"),
    "stand": ("standing",),
    "shine": ("shining", "glowing", "twinkling"),
    "wave": ("waving", "fluttering"),
}

Shape = Literal[
    "circle", "square", "diamond", "boat", "car", "house", "tree", "bird", "balloon", "star", "flag", "tent"
]


class _Object(BaseModel):
    words: tuple[str, ...]
    shape: Shape
    actions: tuple[str, ...]
    airborne: bool = False
    scenes: tuple[str, ...] | None = None  # None: any scene
    colours: tuple[str, ...] | None = None  # None: any colour


OBJECTS: dict[str, _Object] = {
    "ball": _Object(words=("ball", "sphere"), shape="circle", actions=("roll", "bounce", "rest")),
    "box": _Object(words=("box", "crate", "cube"), shape="square", actions=("rest",)),
    "kite": _Object(words=("kite",), shape="diamond", actions=("fly",), airborne=True),
    "boat": _Object(
        words=("boat", "sailboat", "sailing boat"), shape="boat", actions=("sail", "float"), scenes=("sea", "beach")
    ),
    "car": _Object(
        words=("car", "automobile", "hatchback"),
        shape="car",
        actions=("drive", "park"),
        scenes=("city", "desert", "meadow", "snow"),
    ),
    "house": _Object(
        words=("house", "cottage", "cabin"),
        shape="house",
        actions=("stand",),
        scenes=("city", "meadow", "snow", "forest", "beach"),
    ),
    "tree": _Object(
        words=("tree",),
        shape="tree",
        actions=("stand",),
        scenes=("meadow", "snow", "forest", "city", "beach"),
        colours=("green", "yellow", "orange", "red", "brown"),
    ),
    "bird": _Object(words=("bird",), shape="bird", actions=("fly",), airborne=True),
    "balloon": _Object(words=("balloon",), shape="balloon", actions=("float",), airborne=True),
    "star": _Object(
        words=("star",), shape="star", actions=("shine",), airborne=True, scenes=("night", "desert", "snow", "sea")
    ),
    "flag": _Object(words=("flag", "banner", "pennant"), shape="flag", actions=("wave",)),
    "tent": _Object(
        words=("tent",), shape="tent", actions=("stand",), scenes=("meadow", "forest", "desert", "snow", "beach")
    ),
}


class _Scene(BaseModel):
    nouns: tuple[str, ...]  # "a sandy beach"
    places: tuple[str, ...]  # "on a sandy beach"
    sky: tuple[int, int, int]
    ground: tuple[int, int, int]
    horizon: float  # fraction of the height where the ground starts


SCENES: dict[str, _Scene] = {
    "beach": _Scene(
        nouns=("a beach", "a sandy beach", "the seaside", "the shore"),
        places=("on the beach", "on a sandy beach", "at the seaside", "along the shore"),
        sky=(135, 200, 240),
        ground=(235, 210, 150),
        horizon=0.6,
    ),
    "meadow": _Scene(
        nouns=("a meadow", "a grassy field", "a pasture"),
        places=("in a meadow", "in a grassy field", "on a pasture", "out in the field"),
        sky=(150, 205, 245),
        ground=(90, 175, 70),
        horizon=0.55,
    ),
    "snow": _Scene(
        nouns=("a snowy field", "a winter landscape", "fresh snow"),
        places=("in the snow", "on a snowy field", "in a winter landscape"),
        sky=(200, 210, 220),
        ground=(250, 250, 252),
        horizon=0.55,
    ),
    "desert": _Scene(
        nouns=("a desert", "sand dunes", "an arid desert"),
        places=("in the desert", "among sand dunes", "in an arid desert"),
        sky=(250, 225, 170),
        ground=(215, 160, 90),
        horizon=0.6,
    ),
    "sea": _Scene(
        nouns=("the sea", "the ocean", "open water"),
        places=("on the sea", "at sea", "on the ocean", "on open water"),
        sky=(160, 210, 245),
        ground=(30, 90, 160),
        horizon=0.5,
    ),
    "city": _Scene(
        nouns=("a city street", "a town", "downtown"),
        places=("in the city", "on a town street", "downtown"),
        sky=(185, 200, 215),
        ground=(110, 110, 115),
        horizon=0.65,
    ),
    "night": _Scene(
        nouns=("a night sky", "a starry night", "the dark night"),
        places=("at night", "under a night sky", "on a starry night"),
        sky=(15, 20, 60),
        ground=(30, 35, 45),
        horizon=0.8,
    ),
    "forest": _Scene(
        nouns=("a forest", "the woods", "a woodland"),
        places=("in the forest", "in the woods", "in a woodland clearing"),
        sky=(170, 210, 200),
        ground=(45, 105, 50),
        horizon=0.55,
    ),
}

_SCENE_NAMES = tuple(SCENES)
_COLOUR_NAMES = tuple(COLOURS)
_SIZE_NAMES = tuple(SIZES)
_FITTING = {scene: tuple(n for n, o in OBJECTS.items() if o.scenes is None or scene in o.scenes) for scene in SCENES}

_TEMPLATES = (
    "{Things} {place}.",
    "You can see {things} {place}.",
    "{Scene} with {things}.",
    "Picture of {things} {place}.",
    "{things} {place}",
    "{Place} there is {things}.",
    "Photo showing {things} {place}.",
    "{Scene}: {things}",
)


# --- contents --------------------------------------------------------------------------------------


class SceneObject(BaseModel):
    """One object of a synthetic image, as lemmas."""

    model_config = ConfigDict(frozen=True)

    name: str
    colour: str
    size: str
    action: str


class SceneContents(BaseModel):
    """What a synthetic image shows: the truth its captions describe."""

    model_config = ConfigDict(frozen=True)

    scene: str
    objects: tuple[SceneObject, ...]


def synthetic_id(seed: int, index: int) -> str:
    return f"s{seed}-{index:07d}"


def sample_contents(rng: random.Random) -> SceneContents:
    scene = _pick(rng, _SCENE_NAMES)
    count = rng.choices((1, 2, 3), weights=(4, 4, 2))[0]
    objects = []
    for name in rng.sample(_FITTING[scene], count):
        spec = OBJECTS[name]
        colour = _pick(rng, spec.colours or _COLOUR_NAMES)
        objects.append(
            SceneObject(name=name, colour=colour, size=_pick(rng, _SIZE_NAMES), action=_pick(rng, spec.actions))
        )
    return SceneContents(scene=scene, objects=tuple(objects))


def write_captions(contents: SceneContents, rng: random.Random, count: int) -> tuple[str, ...]:
    """``count`` different captions; each names every object (with its colour) and the scene."""
    captions: list[str] = []
    for _ in range(count * 20):
        if len(captions) == count:
            break
        caption = _caption(contents, rng)
        if caption not in captions:
            captions.append(caption)
    return tuple(captions)


def _caption(contents: SceneContents, rng: random.Random) -> str:
    scene = SCENES[contents.scene]
    with_actions = rng.random() < 0.6
    phrases = [_thing(obj, rng, with_action=with_actions) for obj in contents.objects]
    things = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    template = _pick(rng, _TEMPLATES)
    noun, place = _pick(rng, scene.nouns), _pick(rng, scene.places)
    return template.format(
        things=things, Things=_capital(things), place=place, Place=_capital(place), Scene=_capital(noun)
    )


def _thing(obj: SceneObject, rng: random.Random, *, with_action: bool) -> str:
    words = [_pick(rng, COLOURS[obj.colour][0]), _pick(rng, OBJECTS[obj.name].words)]
    if rng.random() < 0.5:
        words.insert(0, _pick(rng, SIZES[obj.size][0]))
    phrase = " ".join(words)
    phrase = ("an " if phrase[0] in "aeiou" else "a ") + phrase
    return f"{phrase} {_pick(rng, ACTIONS[obj.action])}" if with_action else phrase


def _pick(rng: random.Random, options: tuple[str, ...]) -> str:
    """``rng.choice`` at half the cost; the corpus calls it millions of times."""
    return options[int(rng.random() * len(options))]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- drawing ---------------------------------------------------------------------------------------


def draw_scene(contents: SceneContents, *, size: int = 128, seed: int = 0) -> Image.Image:
    """Draw the contents: a sky/ground background, objects in left-to-right slots, flyers above the horizon."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    scene = SCENES[contents.scene]
    image = Image.new("RGB", (size, size), scene.sky)
    draw = ImageDraw.Draw(image)
    horizon = int(size * scene.horizon)
    draw.rectangle((0, horizon, size, size), fill=scene.ground)
    _decorate(draw, contents.scene, size, horizon, rng)
    slot = size / len(contents.objects)
    for index, obj in enumerate(contents.objects):
        spec = OBJECTS[obj.name]
        radius = size * SIZES[obj.size][1] / 2
        cx = slot * (index + 0.5) + rng.uniform(-slot / 8, slot / 8)
        if spec.airborne:
            cy = rng.uniform(radius + 2, max(radius + 3, horizon - radius - 2))
        else:
            cy = min(size - radius - 2, horizon + rng.uniform(0, (size - horizon) / 2))
        _draw_shape(draw, spec.shape, cx, cy, radius, COLOURS[obj.colour][1])
    return image


def _decorate(draw: ImageDraw.ImageDraw, scene: str, size: int, horizon: int, rng: random.Random) -> None:
    if scene == "night":
        for _ in range(12):
            x, y = rng.uniform(0, size), rng.uniform(0, horizon)
            draw.point((x, y), fill=(230, 230, 200))
    elif scene == "city":
        x = 0.0
        while x < size:
            width, height = rng.uniform(size / 10, size / 5), rng.uniform(size / 6, size / 2.5)
            draw.rectangle((x, horizon - height, x + width - 1, horizon), fill=(150, 150, 160))
            x += width
    elif scene == "forest":
        for _ in range(6):
            x = rng.uniform(0, size)
            draw.polygon(
                [(x, horizon - size / 4), (x - size / 14, horizon), (x + size / 14, horizon)], fill=(30, 80, 40)
            )
    elif scene == "beach":
        draw.rectangle((0, horizon - size / 12, size, horizon), fill=(60, 130, 190))


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: Shape, cx: float, cy: float, r: float, colour: tuple[int, int, int]
) -> None:
    outline = (20, 20, 20) if sum(colour) > 200 else (235, 235, 235)
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=colour, outline=outline)
    elif shape == "square":
        draw.rectangle(box, fill=colour, outline=outline)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r * 0.7, cy), (cx, cy + r), (cx - r * 0.7, cy)], fill=colour, outline=outline)
        draw.line([(cx, cy + r), (cx - r * 0.3, cy + r * 1.8)], fill=outline)
    elif shape == "boat":
        draw.polygon(
            [
                (cx - r, cy + r * 0.2),
                (cx + r, cy + r * 0.2),
                (cx + r * 0.6, cy + r * 0.7),
                (cx - r * 0.6, cy + r * 0.7),
            ],
            fill=colour,
            outline=outline,
        )
        draw.polygon(
            [(cx, cy - r), (cx, cy + r * 0.1), (cx + r * 0.7, cy + r * 0.1)], fill=(250, 250, 250), outline=outline
        )
    elif shape == "car":
        draw.rectangle((cx - r, cy - r * 0.2, cx + r, cy + r * 0.4), fill=colour, outline=outline)
        draw.rectangle((cx - r * 0.5, cy - r * 0.6, cx + r * 0.4, cy - r * 0.2), fill=colour, outline=outline)
        for wx in (cx - r * 0.55, cx + r * 0.55):
            draw.ellipse((wx - r * 0.25, cy + r * 0.25, wx + r * 0.25, cy + r * 0.75), fill=(20, 20, 20))
    elif shape == "house":
        draw.rectangle((cx - r * 0.8, cy - r * 0.2, cx + r * 0.8, cy + r), fill=colour, outline=outline)
        draw.polygon(
            [(cx - r, cy - r * 0.2), (cx + r, cy - r * 0.2), (cx, cy - r)], fill=(150, 40, 30), outline=outline
        )
    elif shape == "tree":
        draw.rectangle((cx - r * 0.15, cy, cx + r * 0.15, cy + r), fill=(100, 65, 30))
        draw.ellipse((cx - r * 0.8, cy - r, cx + r * 0.8, cy + r * 0.3), fill=colour, outline=outline)
    elif shape == "bird":
        draw.line(
            [(cx - r, cy - r * 0.4), (cx, cy + r * 0.2), (cx + r, cy - r * 0.4)], fill=colour, width=max(3, int(r / 3))
        )
        draw.ellipse((cx - r * 0.3, cy - r * 0.1, cx + r * 0.3, cy + r * 0.4), fill=colour)
    elif shape == "balloon":
        draw.ellipse((cx - r * 0.7, cy - r, cx + r * 0.7, cy + r * 0.6), fill=colour, outline=outline)
        draw.line([(cx, cy + r * 0.6), (cx, cy + r * 1.4)], fill=outline)
    elif shape == "star":
        points = [
            (
                cx + (r if k % 2 == 0 else r * 0.45) * math.sin(k * math.pi / 5),
                cy - (r if k % 2 == 0 else r * 0.45) * math.cos(k * math.pi / 5),
            )
            for k in range(10)
        ]
        draw.polygon(points, fill=colour, outline=outline)
    elif shape == "flag":
        draw.line([(cx - r * 0.6, cy - r), (cx - r * 0.6, cy + r)], fill=(60, 60, 60), width=max(1, int(r / 8)))
        draw.rectangle((cx - r * 0.6, cy - r, cx + r * 0.8, cy - r * 0.1), fill=colour, outline=outline)
    elif shape == "tent":
        draw.polygon([(cx - r, cy + r * 0.7), (cx + r, cy + r * 0.7), (cx, cy - r * 0.7)], fill=colour, outline=outline)


# --- the corpus ------------------------------------------------------------------------------------


class CorpusManifest(BaseModel):
    """Settings a corpus folder was made with; images are reused only when they match."""

    generator_version: int = GENERATOR_VERSION
    seed: int
    n: int
    captions_per_image: int
    with_images: bool
    image_size: int


def synthetic_record(seed: int, index: int, *, captions_per_image: int = 5) -> tuple[ImageRecord, SceneContents]:
    """Record ``index`` of the corpus made with ``seed`` (without an image path), and its contents."""
    rng = random.Random(f"{seed}:{index}")
    contents = sample_contents(rng)
    record = ImageRecord(
        id=synthetic_id(seed, index),
        captions=write_captions(contents, rng, captions_per_image),
        metadata={"contents": contents.model_dump(mode="json"), "synthetic": True},
    )
    return record, contents


def generate_synthetic_corpus(
    out_dir: str | os.PathLike[str],
    n: int,
    *,
    seed: int,
    captions_per_image: int = 5,
    with_images: bool = True,
    image_size: int = 128,
    progress: bool = True,
) -> Path:
    """Write ``n`` synthetic records (and their JPEG images unless ``with_images=False``) to ``out_dir``.

    Returns ``out_dir/dataset.jsonl``. Idempotent and resumable: images already
    drawn with the same settings are kept, the JSONL is rewritten atomically.
    Without images the records have no ``image`` field (enough for caption-only
    index and throughput tests).
    """
    if n < 1:
        raise InputError(f"a synthetic corpus needs at least one record, not {n}")
    if captions_per_image < 1:
        raise InputError(f"captions_per_image must be at least 1, not {captions_per_image}")
    if image_size < 16:
        raise InputError(f"image_size must be at least 16 pixels, not {image_size}")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    manifest = CorpusManifest(
        seed=seed, n=n, captions_per_image=captions_per_image, with_images=with_images, image_size=image_size
    )
    reuse = _previous_images_match(out / MANIFEST, manifest)
    (out / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")

    def records() -> Iterator[ImageRecord]:
        with progress_bar("synthetic corpus", total=n, enabled=progress, transient=True) as advance:
            for index in range(n):
                record, contents = synthetic_record(seed, index, captions_per_image=captions_per_image)
                if with_images:
                    path = out / "images" / f"{index // 1000:04d}" / f"{record.id}.jpg"
                    if not (reuse and path.is_file()):
                        _save_jpeg(draw_scene(contents, size=image_size, seed=index), path)
                    record = record.model_copy(update={"image": str(path)})
                yield record
                advance(1)

    dataset = out / DATASET_FILE
    write_jsonl(records(), dataset)
    return dataset


def _previous_images_match(path: Path, current: CorpusManifest) -> bool:
    try:
        previous = CorpusManifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return False
    return (previous.generator_version, previous.seed, previous.image_size) == (
        current.generator_version,
        current.seed,
        current.image_size,
    )


def _save_jpeg(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    image.save(partial, format="JPEG", quality=90)
    os.replace(partial, path)
