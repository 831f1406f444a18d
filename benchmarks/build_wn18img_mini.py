"""Rebuild the bundled WN18IMGMini (``pykeen_mkgformer/data/resources/wn18imgmini``) from WN18IMG.

Usage::

    PYKEEN_MKGFORMER_DATA=../shared/data python benchmarks/build_wn18img_mini.py [--output DIR]

The subgraph, all deterministic:

1. entities: those with images, their hypernym ancestors (``_hypernym`` / ``_instance_hypernym``
   chains up to the WordNet root, which connect them) and their direct neighbours;
2. triples: every WN18 triple (train + valid + test) between two of those entities;
3. the largest connected component of that graph;
4. a split of 80 / 10 / 10 % in a seeded order, where a triple goes to validation / testing only
   if its head, tail and relation keep at least one training triple.

Written: ``{train,valid,test}.tsv.gz``, ``entity2text.tsv.gz``, ``relation2text.tsv.gz`` (gzip, mtime 0,
so reruns give identical bytes). Images are not copied (ImageNet's licence): at run time they are
read from ``$PYKEEN_MKGFORMER_DATA/wn18_images``.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import pathlib
import random

from pykeen_mkgformer.data.datasets import RESOURCES, WN18IMG

HYPERNYMS = {"_hypernym", "_instance_hypernym"}
HYPONYMS = {"_hyponym", "_instance_hyponym"}


def select_entities(triples: list[tuple[str, str, str]], imaged: set[str]) -> set[str]:
    """Imaged entities, their hypernym ancestors and their direct neighbours."""
    parents = collections.defaultdict(set)
    for h, r, t in triples:
        if r in HYPERNYMS:
            parents[h].add(t)
        elif r in HYPONYMS:
            parents[t].add(h)
    selected, stack = set(imaged), list(imaged)
    while stack:
        for parent in parents[stack.pop()]:
            if parent not in selected:
                selected.add(parent)
                stack.append(parent)
    selected |= {e for h, _, t in triples if h in imaged or t in imaged for e in (h, t)}
    return selected


def largest_component(triples: list[tuple[str, str, str]]) -> set[str]:
    """The entities of the largest connected component (ties: the smallest first label)."""
    neighbours = collections.defaultdict(set)
    for h, _, t in triples:
        neighbours[h].add(t)
        neighbours[t].add(h)
    seen: set[str] = set()
    best: set[str] = set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        component, stack = {start}, [start]
        while stack:
            for other in neighbours[stack.pop()]:
                if other not in component:
                    component.add(other)
                    stack.append(other)
        seen |= component
        if len(component) > len(best):
            best = component
    return best


def split(triples: list[tuple[str, str, str]], seed: int = 0, ratio: float = 0.1) -> dict[str, list]:
    """80/10/10 in a seeded order; evaluation triples never take an entity's or relation's last training triple."""
    order = sorted(triples)
    random.Random(seed).shuffle(order)
    count = collections.Counter(x for h, r, t in order for x in (h, t, "rel:" + r))
    target = round(ratio * len(order))
    parts: dict[str, list] = {"train": [], "valid": [], "test": []}
    for h, r, t in order:
        mine = collections.Counter((h, t, "rel:" + r))
        part = "valid" if len(parts["valid"]) < target else "test" if len(parts["test"]) < target else "train"
        if part != "train" and all(count[k] > n for k, n in mine.items()):
            count -= mine
        else:
            part = "train"
        parts[part].append((h, r, t))
    return parts


def write_gzip(path: pathlib.Path, lines: list[str]) -> None:
    """Gzip with mtime 0: identical bytes on every run."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as file:
        file.write("".join(line + "\n" for line in lines).encode("utf-8"))


def main() -> None:
    """Build and write the bundled files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=pathlib.Path, default=RESOURCES.joinpath("wn18imgmini"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    dataset = WN18IMG()
    factories = [dataset.training, dataset.validation, dataset.testing]
    base = dataset.training
    triples = [tuple(map(str, row)) for tf in factories for row in tf.label_triples(tf.mapped_triples)]
    imaged = {base.entity_id_to_label[i] for i, paths in enumerate(base.entity_images) if paths}

    selected = select_entities(triples, imaged)
    kept = [x for x in triples if x[0] in selected and x[2] in selected]
    component = largest_component(kept)
    kept = sorted(x for x in kept if x[0] in component)
    parts = split(kept, seed=args.seed)

    args.output.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        write_gzip(args.output.joinpath(f"{name}.tsv.gz"), ["\t".join(x) for x in sorted(part)])
    entity_to_id = base.entity_to_id
    write_gzip(
        args.output.joinpath("entity2text.tsv.gz"),
        [f"{e}\t{base.entity_descriptions[entity_to_id[e]]}" for e in sorted(component)],
    )
    relations = sorted({r for _, r, _ in kept})
    relation_to_id = base.relation_to_id
    write_gzip(
        args.output.joinpath("relation2text.tsv.gz"),
        [f"{r}\t{base.relation_texts[relation_to_id[r]]}" for r in relations],
    )
    print(  # noqa: T201
        f"WN18IMGMini: {len(component):,} entities ({len(component & imaged)} with images), "
        f"{len(relations)} relations, triples "
        + " / ".join(f"{name} {len(part):,}" for name, part in parts.items())
        + f" -> {args.output}"
    )


if __name__ == "__main__":
    main()
