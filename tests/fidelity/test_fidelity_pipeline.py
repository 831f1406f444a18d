"""The official RE / NER pipelines from the files to the logits, exactly (float64, <= 1e-6).

Small benchmark-format folders (MNRE JSON lines with a crop index, CoNLL with IMGID lines) go through
the plugin's own readers, image loaders and collators under ``RERecipe.official()`` /
``NERRecipe.official()``; the result is compared with :mod:`official_reference`'s functional reading
of the official pipeline on the same files. Each switch (README Fidelity items 1-6) is also flipped
back to the plugin's choice, and the comparison must then fail: the test pins the switch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from official_reference import crf_nll, official_ner_batch, official_ner_emissions, official_re_batch, official_re_logits
from pykeen_mkgformer.ner import NamedEntityRecognition
from pykeen_mkgformer.ner.recipe import NERRecipe
from pykeen_mkgformer.re import RelationExtraction
from pykeen_mkgformer.re.model import HEAD_START, TAIL_START, mark_entities
from pykeen_mkgformer.re.recipe import RERecipe
from pykeen_mkgformer.re.data import RelationInstance, Span
from pykeen_mkgformer.tasks.encoders import load_encoder
from pykeen_mkgformer.tasks.lines import BadLines
from pykeen_mkgformer.tasks.runner import PreparedData, RunOptions, build_images, training_settings
from pykeen_mkgformer.tasks.training import parameter_groups
from task_fixtures import write_conll_folder, write_mnre_folder

TOLERANCE = 1e-6
#: the tiny CLIP tower's patch is 8 px: the official crop groups are 4 and 2 patches a side
SIDES = (32, 16)


def _image(path: Path, seed: int, size=(40, 30)) -> None:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=generator, dtype=torch.uint8).numpy()
    Image.fromarray(pixels).save(path)


def _crop_folders(root: Path, large: dict, small: dict) -> tuple[Path, Path]:
    """Crop folders with ``index.json`` (large: per split and key; small: per image stem), random PNGs."""
    folders = []
    for name, index in (("crops", large), ("rcnn", small)):
        folder = root / name
        folder.mkdir()
        files = {file for value in index.values() for file in (value if isinstance(value, list) else
                 [f for files in value.values() for f in files])}
        for seed, file in enumerate(sorted(files)):
            _image(folder / file, seed + (0 if name == "crops" else 100))
        (folder / "index.json").write_text(json.dumps(index))
        folders.append(folder)
    return folders[0], folders[1]


# ------------------------------------------------------------------------------------------- MNRE
RE_TEST = [
    # normal; 4 crops listed (the first 3 are used), 2 small crops
    {"token": ["Alice", "visited", "Paris", "today"], "h": {"name": "Alice", "pos": [0, 1]},
     "t": {"name": "Paris", "pos": [2, 3]}, "img_id": "a.jpg", "relation": "/per/loc/place_of_residence"},
    # the tail ends the sentence: the official reader writes no closing </o>; 1 crop, no small crops
    {"token": ["The", "band", "Coldplay", "played", "Wembley"], "h": {"name": "Coldplay", "pos": [2, 3]},
     "t": {"name": "Wembley", "pos": [4, 5]}, "img_id": "b.jpg", "relation": "None"},
    # the tail ends where the head starts (<s> </s> <o> </o> order before that word); no crops at all
    {"token": ["Obama", "Biden", "met", "yesterday"], "h": {"name": "Biden", "pos": [1, 2]},
     "t": {"name": "Obama", "pos": [0, 1]}, "img_id": "c.jpg", "relation": "/per/per/peer"},
    # a longer sentence, one small crop
    {"token": "the new album of Adele is out now and everybody in London loves it".split(),
     "h": {"name": "Adele", "pos": [4, 5]}, "t": {"name": "London", "pos": [11, 12]}, "img_id": "d.jpg",
     "relation": "None"},
]
RELATIONS = ["None", "/per/loc/place_of_residence", "/per/per/peer"]


@pytest.fixture(scope="module")
def mnre_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mnre")
    folder = write_mnre_folder(root / "data", {"train": RE_TEST[:2], "dev": RE_TEST[:2], "test": RE_TEST}, RELATIONS)
    large = {"test": {"0": ["c0.png", "c1.png", "c2.png", "c3.png"], "1": ["c4.png"], "3": ["c5.png", "c6.png"]}}
    small = {"a": ["s0.png", "s1.png"], "d": ["s2.png"]}
    _crop_folders(root, large, small)
    return root


def _task_pipeline(task_class, root: Path, text: Path, recipe):
    """The plugin's pipeline for ``task_class`` on the test split: (task, model in float64, batch in file order, tokenizer)."""
    options = RunOptions(data=root / "data", output=root / "unused", text_encoder=str(text),
                         crops=root / "crops", small_crops=root / "rcnn", recipe=recipe)
    task = task_class(root / "data", bad_lines=BadLines(), recipe=recipe)
    splits = {split: task.read(split) for split in ("train", "test")}
    torch.manual_seed(0)
    bundle = load_encoder(text, "tiny", fusion_variant=recipe.fusion_variant)
    task.setup(bundle.tokenizer, bundle.encoder, splits["train"])
    images = build_images(recipe, bundle, options)
    data = PreparedData(task, splits, bundle.tokenizer, images, max_length=recipe.max_length, batch_size=8, progress=False)
    torch.manual_seed(1)
    model = task.build_model(bundle.encoder).double().eval()
    batch = data._collate(list(zip(data.features["test"], data.pixels["test"])))
    return task, model, _double(batch), bundle.tokenizer


def _re_pipeline(root: Path, text: Path, recipe: RERecipe):
    """The plugin's official RE pipeline on the test split: (model in float64, batch in file order)."""
    _, model, batch, tokenizer = _task_pipeline(RelationExtraction, root, text, recipe)
    return model, batch, tokenizer


def _double(batch: dict) -> dict:
    if batch["images"] is None:
        return batch
    pixels, masks = batch["images"]
    return {**batch, "images": ([p.double() for p in pixels], masks)}


def _re_reference(root: Path, model, tokenizer):
    ids, mask, types, crops = official_re_batch(
        root / "data" / "test.jsonl", tokenizer, 80, root / "crops", root / "rcnn", "test", SIDES
    )
    with torch.no_grad():
        return official_re_logits(
            model.encoder, model.classifier, tokenizer.convert_tokens_to_ids(HEAD_START),
            tokenizer.convert_tokens_to_ids(TAIL_START), ids, mask, types, tuple(c.double() for c in crops),
        )


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and float((a - b).abs().max()) <= TOLERANCE


def test_re_official_pipeline_equals_the_reference(mnre_folder, tiny_text):
    model, batch, tokenizer = _re_pipeline(mnre_folder, tiny_text, RERecipe.official())
    assert batch["input_ids"].shape == (4, 80)  # item 1: padded to max_seq
    with torch.no_grad():
        logits = model.logits(batch)
    reference = _re_reference(mnre_folder, model, tokenizer)
    assert logits.dtype == torch.float64 and logits.shape == (4, len(RELATIONS))
    assert float((logits - reference).abs().max()) <= TOLERANCE


@pytest.mark.parametrize(
    ("item", "change"),
    [
        ("1 padding", {"padding": "longest"}),
        ("2 missing crops", {"missing_images": "masked"}),
        ("3 crop sources", {"crop_source": "stem"}),
        ("5 marker placement", {"marker_placement": "nested"}),
    ],
)
def test_re_each_official_switch_is_needed(mnre_folder, tiny_text, item, change):
    """Flipping one switch back to the plugin's choice breaks the equality with the official pipeline."""
    model, batch, tokenizer = _re_pipeline(mnre_folder, tiny_text, RERecipe.official(**change))
    with torch.no_grad():
        logits = model.logits(batch)
    assert not _close(logits, _re_reference(mnre_folder, model, tokenizer)), item


def test_re_small_crops_never_default_to_the_large_ones(mnre_folder, tiny_text):
    """Item 3: without --small-crops the small group is empty (zero images), not a copy of --crops."""
    recipe = RERecipe.official()
    options = RunOptions(data=mnre_folder / "data", output=mnre_folder / "unused", text_encoder=str(tiny_text),
                         crops=mnre_folder / "crops", recipe=recipe)
    bundle = load_encoder(tiny_text, "tiny", fusion_variant="official")
    images = build_images(recipe, bundle, options)
    items = images.prepare(["a.jpg"], keys=["0"], split="test", progress=False)
    assert len(items[0][0]) == 3 and items[0][1] == []
    (large, small), (large_mask, small_mask) = images.batch(items)
    assert small.abs().sum() == 0 and small_mask.all() and large_mask.all()  # zeros, attended (item 2)


def test_re_official_marker_placement_by_hand():
    """Item 5: markers before words; no closing marker after a final span; <s> </s> <o> </o> order."""
    def instance(tokens, head, tail):
        return RelationInstance(tuple(tokens), Span("h", *head), Span("t", *tail), None, "None", "f:1")

    final = instance(["a", "b", "c"], (0, 1), (2, 3))
    assert mark_entities(final, "official") == ["<s>", "a", "</s>", "b", "<o>", "c"]
    assert mark_entities(final, "nested") == ["<s>", "a", "</s>", "b", "<o>", "c", "</o>"]
    touching = instance(["x", "y"], (1, 2), (0, 1))
    assert mark_entities(touching, "official") == ["<o>", "x", "<s>", "</o>", "y"]
    assert mark_entities(touching, "nested") == ["<o>", "x", "</o>", "<s>", "y", "</s>"]


def test_re_official_head_and_markers(mnre_folder, tiny_text):
    """Items 4 and 5: no dropout, classifier frozen and outside the optimizer; marker rows N(0, 0.02), no padding_idx."""
    model, batch, tokenizer = _re_pipeline(mnre_folder, tiny_text, RERecipe.official())
    assert model.dropout.p == 0.0 and not model.classifier.weight.requires_grad
    grouped = {id(p) for group in parameter_groups(model, training_settings(RERecipe.official(), seed=0)) for p in group["params"]}
    assert id(model.classifier.weight) not in grouped and id(model.classifier.bias) not in grouped
    embeddings = model.encoder.get_input_embeddings()
    assert embeddings.padding_idx is None
    rows = embeddings.weight[-4:].detach()
    old_mean = embeddings.weight[:-4].detach().mean(dim=0)
    assert float(rows.std()) == pytest.approx(0.02, rel=0.35)
    assert float((rows.mean(dim=0) - old_mean).abs().max()) > 1e-3  # not transformers' mean rows
    # the [PAD] row takes gradients: official padding is attended in PGI and the row is not padding_idx
    model.train()
    model.loss(batch).backward()
    assert float(embeddings.weight.grad[tokenizer.pad_token_id].abs().sum()) > 0

    paper, _, _ = _re_pipeline(mnre_folder, tiny_text, RERecipe.paper())
    assert paper.encoder.get_input_embeddings().padding_idx == tokenizer.pad_token_id
    assert paper.classifier.weight.requires_grad and paper.dropout.p == pytest.approx(0.1)


# ------------------------------------------------------------------------------------------- MNER
NER_TEST = [
    [("RT", "O"), ("@jdoe", "O"), ("Barack", "B-PER"), ("Obama", "I-PER"), ("visits", "O"), ("Brandenburgerstrasse", "B-LOC")],
    [("Manchester", "B-ORG"), ("United", "I-ORG"), ("\u200b", "O"), ("wins", "O"), ("Cupfinal", "B-OTHER")],
    [("nothing", "O"), ("here", "O")],
    [(f"word{index}", "O" if index % 7 else "B-MISC") for index in range(40)],
]


@pytest.fixture(scope="module")
def conll_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("twitter")
    write_conll_folder(root / "data", {"train": NER_TEST[:2], "dev": NER_TEST[:2], "test": NER_TEST})
    large = {"test": {"test_0.jpg": ["c0.png", "c1.png", "c2.png", "c3.png"], "test_3.jpg": ["c4.png"]}}
    small = {"test_0": ["s0.png"], "test_1": ["s1.png", "s2.png", "s3.png"]}
    _crop_folders(root, large, small)
    return root


def _ner_pipeline(root: Path, text: Path, recipe: NERRecipe):
    return _task_pipeline(NamedEntityRecognition, root, text, recipe)


@pytest.mark.parametrize("max_seq", [128, 24])  # 24: the long sentence is cut to max_seq - 2 pieces
def test_ner_official_pipeline_equals_the_reference(conll_folder, tiny_text, max_seq):
    task, model, batch, tokenizer = _ner_pipeline(conll_folder, tiny_text, NERRecipe.official(max_length=max_seq))
    ids, mask, types, labels, crops = official_ner_batch(
        conll_folder / "data" / "test.txt", tokenizer, max_seq, conll_folder / "crops", conll_folder / "rcnn", "test", SIDES
    )
    assert torch.equal(batch["input_ids"], ids) and torch.equal(batch["attention_mask"], mask)
    assert torch.equal(batch["tags"], labels)
    with torch.no_grad():
        emissions = model.emissions(batch)
        loss = model.loss(batch)
        reference = official_ner_emissions(model.encoder, model.emission, ids, mask, types, tuple(c.double() for c in crops))
        crf = model.crf
        reference_loss = crf_nll(reference, labels, mask.bool(), crf.start_transitions.double(),
                                 crf.end_transitions.double(), crf.transitions.double())
    assert emissions.shape == (4, max_seq, 13)
    assert float((emissions - reference).abs().max()) <= TOLERANCE
    assert abs(float(loss) - float(reference_loss)) <= TOLERANCE
    # a word's prediction is the tag decoded at its first piece; a word without pieces is O
    with torch.no_grad():
        predicted = model.predict(batch)
    paths = model.crf.decode(reference, mask=mask.bool())
    second = batch["word_index"][1].tolist()
    assert second[2] == 0 and predicted[1][2] == task.label_ids["O"]  # the zero-width space has no piece
    assert predicted[1][:2] == [paths[1][second[0]], paths[1][second[1]]]


@pytest.mark.parametrize(
    ("item", "change"),
    [
        ("1 padding", {"padding": "longest"}),
        ("2 missing crops", {"missing_images": "masked"}),
        ("3 crop sources", {"crop_source": "stem"}),
    ],
)
def test_ner_each_official_switch_is_needed(conll_folder, tiny_text, item, change):
    _, model, batch, tokenizer = _ner_pipeline(conll_folder, tiny_text, NERRecipe.official(**change))
    ids, mask, types, _, crops = official_ner_batch(
        conll_folder / "data" / "test.txt", tokenizer, 128, conll_folder / "crops", conll_folder / "rcnn", "test", SIDES
    )
    with torch.no_grad():
        emissions = model.emissions(batch)
        reference = official_ner_emissions(model.encoder, model.emission, ids, mask, types, tuple(c.double() for c in crops))
    assert not _close(emissions, reference), item


def test_ner_crf_scope_pieces_is_the_official_tag_set(conll_folder, tiny_text):
    """Item 6: official = 13 tags over every piece; the plugin's = O + B/I of the data's types over words."""
    task, model, batch, _ = _ner_pipeline(conll_folder, tiny_text, NERRecipe.official())
    assert task.labels[0] == "PAD" and len(task.labels) == 13 and model.crf.num_tags == 13
    assert batch["tags"].shape == batch["input_ids"].shape
    # B-OTHER is read as B-MISC, continuation pieces are X
    tags = [task.labels[t] for t in batch["tags"][1].tolist() if t]
    assert tags[0] == "[CLS]" and tags[-1] == "[SEP]" and "B-MISC" in tags and "X" in tags
    words = NamedEntityRecognition(conll_folder / "data", bad_lines=BadLines(), recipe=NERRecipe.official(crf_scope="words"))
    words.setup(None, None, words.read("train"))
    assert words.labels == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-OTHER", "I-OTHER", "B-PER", "I-PER"]


def test_ner_official_optimizer_groups(conll_folder, tiny_text):
    """Item 7: text 5e-5, vision 3e-5, CRF + emission 5e-2, weight decay 0.01 on every parameter."""
    _, model, _, _ = _ner_pipeline(conll_folder, tiny_text, NERRecipe.official())
    groups = parameter_groups(model, training_settings(NERRecipe.official(), seed=0))
    by_id = {id(p): group for group in groups for p in group["params"]}
    for name, parameter in model.named_parameters():
        group = by_id[id(parameter)]
        expected = 5e-2 if not name.startswith("encoder.") else (
            3e-5 if name.startswith(("encoder.vision_model.", "encoder.group_position_embeddings.")) else 5e-5)
        assert group["lr"] == expected, name
        assert group["weight_decay"] == 0.01, name
    assert sum(len(group["params"]) for group in groups) == len(list(model.parameters()))


def test_re_recipe_is_saved_and_explain_reads_the_run_as_it_trained(mnre_folder, tiny_text, tmp_path):
    """The recipe goes to model/task.json and metrics.json; ``explain`` rebuilds the official input from it."""
    from pykeen_mkgformer.explain.relation_extraction import explain_relation_extraction
    from pykeen_mkgformer.tasks.runner import run_task

    recipe = RERecipe.official(epochs=1, batch_size=4, max_length=40)
    metrics = run_task(RelationExtraction, RunOptions(
        data=mnre_folder / "data", output=tmp_path / "out", text_encoder=str(tiny_text), crops=mnre_folder / "crops",
        small_crops=mnre_folder / "rcnn", recipe=recipe, progress=False,
    ))
    saved = json.loads((tmp_path / "out" / "model" / "task.json").read_text())["recipe"]
    assert RERecipe.from_dict(saved) == recipe and metrics["recipe"] == recipe.to_dict()
    assert metrics["images"]["test"]["crops"] == [3 + 1 + 2, 2 + 1]
    result = explain_relation_extraction(tmp_path / "out", 1)  # the tail ends the sentence
    texts = [token.text for token in result.tokens]
    assert len(texts) == 40 and "</o>" not in texts and texts.count("<o>") == 1  # padded; official markers
