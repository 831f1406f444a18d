"""ShapesKG: a small synthetic multimodal KG whose answers are visible only in the images.

Every entity is a rendered object with a colour, a shape and a size. Its text ("object number 17")
says nothing about them. The relations are

- ``same_colour_as(h, t)``: h and t have the same colour (h != t),
- ``same_shape_as(h, t)``: h and t have the same shape (h != t),
- ``larger_than(h, t)``: h's size is larger than t's.

The split is semi-inductive: a few *held-out* entities never occur in training; validation and
testing hold the triples whose head is held out (and whose tail is a training entity). Their tails
can be derived only from the held-out head's image (its text and id carry no information), so a
model that beats a structure-only one there uses its images. Evaluate tail prediction
(PyKEEN's ``targets=("tail",)``): predicting the held-out head itself would need its own entity
embedding, which nothing trains; for the same reason triples with a held-out tail are not part of
the graph.

Everything is deterministic under ``seed`` and written with Pillow into a folder in the layout the
other datasets use (``train.tsv``, ``entity2text.tsv``, ``images/<entity>/<k>.png``, ...), plus
``attributes.tsv`` with the ground truth.
"""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import random
import shutil
import tempfile
from collections.abc import Sequence

from PIL import Image, ImageDraw

__all__ = ["COLOURS", "SHAPES", "SIZES", "RELATIONS", "ShapeObject", "make_objects", "render", "generate_shapes_kg"]

#: colour name -> RGB
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 200, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
#: size name -> fraction of the image side the object spans
SIZES: dict[str, float] = {"small": 0.3, "medium": 0.55, "large": 0.85}
#: relation label -> text
RELATIONS: dict[str, str] = {
    "same_colour_as": "same colour as",
    "same_shape_as": "same shape as",
    "larger_than": "larger than",
}
#: bump when the generated files change
FORMAT_VERSION = 2

ShapeObject = tuple[str, str, str]
"""(colour, shape, size)"""


def make_objects(num_entities: int, seed: int) -> list[ShapeObject]:
    """Attributes per entity: every combination in turn (balanced), in a seeded order."""
    combinations = list(itertools.product(COLOURS, SHAPES, SIZES))
    rng = random.Random(seed)
    objects: list[ShapeObject] = []
    while len(objects) < num_entities:
        block = combinations[:]
        rng.shuffle(block)
        objects.extend(block)
    return objects[:num_entities]


def render(obj: ShapeObject, image_size: int, rng: random.Random, jitter: bool) -> Image.Image:
    """Draw one object on a white background; ``jitter`` shifts it a little and varies the shade."""
    colour, shape, size = obj
    image = Image.new("RGB", (image_size, image_size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    extent = SIZES[size] * image_size
    slack = image_size - extent
    dx = rng.uniform(-slack / 2, slack / 2) * 0.8 if jitter else 0.0
    dy = rng.uniform(-slack / 2, slack / 2) * 0.8 if jitter else 0.0
    shade = rng.randint(-20, 20) if jitter else 0
    fill = tuple(min(255, max(0, c + shade)) for c in COLOURS[colour])
    cx, cy, r = image_size / 2 + dx, image_size / 2 + dy, extent / 2
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif shape == "cross":
        w = r / 3
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fill)
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return image


def _triples(labels: Sequence[str], objects: Sequence[ShapeObject]) -> list[tuple[str, str, str]]:
    size_rank = {name: rank for rank, name in enumerate(SIZES)}
    triples = []
    for (h, (hc, hs, hz)), (t, (tc, ts, tz)) in itertools.permutations(zip(labels, objects, strict=True), 2):
        if hc == tc:
            triples.append((h, "same_colour_as", t))
        if hs == ts:
            triples.append((h, "same_shape_as", t))
        if size_rank[hz] > size_rank[tz]:
            triples.append((h, "larger_than", t))
    return triples


def generate_shapes_kg(
    folder: str | pathlib.Path,
    *,
    num_entities: int = 48,
    image_size: int = 32,
    images_per_entity: int = 1,
    held_out: float = 0.25,
    seed: int = 0,
) -> pathlib.Path:
    """Write a ShapesKG into ``folder`` (nothing happens when a complete one is there already).

    :param folder: the output folder
    :param num_entities: number of objects (48 = every colour x shape x size once)
    :param image_size: image side in px
    :param images_per_entity: renders per object (the first centred, the others shifted/shaded)
    :param held_out: fraction of entities kept out of training (half for validation, half for testing)
    :param seed: the seed of every random choice
    :return: the folder
    """
    folder = pathlib.Path(folder)
    if folder.joinpath("done.json").is_file():
        return folder
    if not 4 <= num_entities <= 1000:
        raise ValueError(f"num_entities={num_entities} must lie in [4, 1000]")
    if not 0 < held_out < 1:
        raise ValueError(f"held_out={held_out} must lie in (0, 1)")
    rng = random.Random(seed)
    objects = make_objects(num_entities, seed)
    labels = [f"object_{i:03d}" for i in range(num_entities)]
    order = labels[:]
    rng.shuffle(order)
    num_held_out = max(2, round(held_out * num_entities))
    validation_entities = set(order[: num_held_out // 2])
    testing_entities = set(order[num_held_out // 2 : num_held_out])

    splits: dict[str, list[tuple[str, str, str]]] = {"train": [], "valid": [], "test": []}
    held_out_entities = validation_entities | testing_entities
    for h, r, t in _triples(labels, objects):
        if t in held_out_entities:
            # answering them needs the held-out entity's own embedding, which nothing trains
            continue
        if h in validation_entities:
            splits["valid"].append((h, r, t))
        elif h in testing_entities:
            splits["test"].append((h, r, t))
        else:
            splits["train"].append((h, r, t))

    if folder.exists():  # a generation that was interrupted
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        for name, triples in splits.items():
            tmp.joinpath(f"{name}.tsv").write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in triples), encoding="utf-8")
        tmp.joinpath("entity2text.tsv").write_text(
            "".join(f"{label}\tobject number {int(label.split('_')[1])}\n" for label in labels), encoding="utf-8"
        )
        tmp.joinpath("relation2text.tsv").write_text(
            "".join(f"{r}\t{text}\n" for r, text in RELATIONS.items()), encoding="utf-8"
        )
        tmp.joinpath("attributes.tsv").write_text(
            "entity\tcolour\tshape\tsize\n"
            + "".join(f"{label}\t{c}\t{s}\t{z}\n" for label, (c, s, z) in zip(labels, objects, strict=True)),
            encoding="utf-8",
        )
        for label, obj in zip(labels, objects, strict=True):
            image_folder = tmp.joinpath("images", label)
            image_folder.mkdir(parents=True)
            for k in range(images_per_entity):
                render(obj, image_size, rng, jitter=k > 0).save(image_folder.joinpath(f"{k}.png"))
        tmp.joinpath("done.json").write_text(
            json.dumps(dict(version=FORMAT_VERSION, splits={k: len(v) for k, v in splits.items()})), encoding="utf-8"
        )
        try:
            os.replace(tmp, folder)
        except OSError:
            if not folder.joinpath("done.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
