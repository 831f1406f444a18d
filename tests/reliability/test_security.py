"""Safe to open, safe to write (issue 22): model folders that cannot run code, outputs that never destroy
inputs, atomic writes, labels that round-trip, and every silent mismatch reported.

A planted pickle here is harmless: unpickling it creates a marker file, so a test sees whether it ran.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from kgc_support import single_thread, tiny_model_kwargs

from pykeen_mkgformer.cli import main
from pykeen_mkgformer.data import MultimodalTriplesFactory
from pykeen_mkgformer.data.atomic import OutputError, atomic_folder, atomic_write, check_output, write_text
from pykeen_mkgformer.data.labels import near_duplicates, printable, summarize
from pykeen_mkgformer.data.trust import UnsafeFileError, load_pickle
from pykeen_mkgformer.kgc.saved_model import SAFE_FOLDER, load_model, load_trained_model, save_model

#: labels a hostile data file may hold: markup, a script-block breaker, terminal escapes, line breaks
HOSTILE = [
    "</script><img src=x onerror=\"document.title='pwned'\">",
    "<!--<script>",
    "a\rb",
    "tab\there",
    "line\nbreak",
    "para\u2028sep\u2029",
    "\x1b[31mred\x1b[0m",
    "&amp;<b>bold</b>",
    "plain",
    " trailing",
]


class Payload:
    """Unpickling this creates ``marker``: the proof that a pickle ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


pytestmark = pytest.mark.usefixtures("one_thread")  # the root conftest: one intra-op thread


def hostile_factory() -> MultimodalTriplesFactory:
    entities = HOSTILE
    relations = ["rel\r1", "</script>"]
    triples = np.array(
        [[entities[i], relations[i % 2], entities[(i * 3 + 1) % len(entities)]] for i in range(len(entities))], dtype=object
    )
    return MultimodalTriplesFactory.from_labeled_triples(
        triples,
        entity_descriptions={label: f"description of {label}" for label in entities},
        relation_texts={relations[0]: "first\u2028relation", relations[1]: "<b>second</b>"},
        create_inverse_triples=True,
    )


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory):
    from pykeen_mkgformer.kgc import MKGformer

    with single_thread():
        torch.manual_seed(0)
        model = MKGformer(triples_factory=hostile_factory(), **tiny_model_kwargs(tmp_path_factory.mktemp("pix"), max_images=0))
    return model.eval()


def _scores(model) -> torch.Tensor:
    with torch.no_grad():
        queries = torch.tensor([[e, r] for e in range(model.num_entities) for r in range(model.num_real_relations)])
        return model.predict_t(queries)


# ---------------------------------------------------------------------- model folders are data
def test_safe_folder_round_trip_gives_the_same_labels_and_scores(hostile_model, tmp_path):
    folder = save_model(hostile_model, tmp_path / "saved")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["config.json", "encoder", "labels.json", "model.safetensors", "tokenizer", "triples.safetensors"]
    assert sorted(p.name for p in (folder / "encoder").iterdir()) == ["config.json", "model.safetensors"]
    assert not [p for p in folder.rglob("*") if p.suffix in (".pkl", ".pt", ".pth", ".bin")]
    loaded = load_model(folder)
    assert loaded.label_factory.entity_to_id == hostile_model.label_factory.entity_to_id
    assert loaded.label_factory.relation_to_id == hostile_model.label_factory.relation_to_id
    assert loaded.label_factory.relation_texts == hostile_model.label_factory.relation_texts
    assert torch.equal(_scores(loaded), _scores(hostile_model))
    # explain reads the query with the model's own tokenizer (saved with it), never a rebuilt one
    from pykeen_mkgformer.kgc.saved_model import recover_tokenizer

    assert recover_tokenizer(loaded, loaded.label_factory, 0, 0) is loaded.tokenizer
    assert loaded.tokenizer.get_vocab() == hostile_model.tokenizer.get_vocab()
    # the configuration holds the towers as configs: no pretrained checkpoint or path is needed to reopen it
    config = json.loads((folder / "config.json").read_text())
    assert isinstance(config["kwargs"]["text_encoder"], dict) and "image_cache_dir" not in config["kwargs"]


def test_a_pickled_folder_is_refused_and_its_payload_never_runs(tmp_path, caplog):
    marker = tmp_path / "payload-ran"
    folder = tmp_path / "results"
    folder.mkdir()
    torch.save(Payload(marker), folder / "trained_model.pkl")
    (folder / "training_triples").mkdir()
    torch.save(Payload(marker), folder / "training_triples" / "base.pth")
    with pytest.raises(UnsafeFileError, match=r"trained_model.pkl is a pickle.*--trust-pickles.*mkgformer/"):
        load_trained_model(folder)
    runner = CliRunner()
    predicted = runner.invoke(main, ["predict", "--model", str(folder), "--head", "a", "--relation", "r"])
    assert predicted.exit_code != 0 and "trained_model.pkl is a pickle" in predicted.output
    explained = runner.invoke(main, ["explain", "--model", str(folder), "--head", "a", "--relation", "r",
                                     "--output", str(tmp_path / "page.html")])
    assert explained.exit_code != 0 and "--trust-pickles" in explained.output
    assert not marker.exists() and not (tmp_path / "page.html").exists()
    # the opt-in reads it (and says why it is dangerous): the payload runs, which is what trusting means
    with caplog.at_level("WARNING", logger="pykeen_mkgformer.data.trust"):
        load_pickle(folder / "trained_model.pkl", trust=True)
    assert marker.exists() and "a pickle runs any code it holds" in caplog.text


def test_an_old_factory_folder_needs_trust_for_its_base_pth(tmp_path):
    marker = tmp_path / "payload-ran"
    factory = hostile_factory()
    path = factory.to_path_binary(tmp_path / "factory")
    # an older folder: no JSON base state, a pickled base.pth
    import gzip

    with gzip.open(path / "multimodal.json.gz", "rt", encoding="utf-8") as file:
        stored = json.load(file)
    del stored["base"]
    with gzip.open(path / "multimodal.json.gz", "wt", encoding="utf-8") as file:
        json.dump(stored, file)
    torch.save(Payload(marker), path / "base.pth")
    with pytest.raises(UnsafeFileError, match="base.pth is a pickle"):
        MultimodalTriplesFactory.from_path_binary(path)
    assert not marker.exists()


def test_factory_folders_round_trip_any_label_without_pickles(tmp_path):
    factory = hostile_factory()
    path = factory.to_path_binary(tmp_path / "factory")
    (path / "base.pth").unlink()  # not needed: the JSON holds it
    again = MultimodalTriplesFactory.from_path_binary(path)
    assert again.entity_to_id == factory.entity_to_id and again.relation_to_id == factory.relation_to_id
    assert torch.equal(again.mapped_triples, factory.mapped_triples) and again.create_inverse_triples


def test_a_planted_checkpoint_is_not_unpickled(tmp_path):
    from pykeen_mkgformer.tasks.training import FineTuner, TrainingSettings

    marker = tmp_path / "payload-ran"
    torch.save({"signature": {}, "payload": Payload(marker)}, tmp_path / "checkpoint.pt")
    tuner = FineTuner(torch.nn.Linear(2, 2), TrainingSettings(), tmp_path, signature={}, device=torch.device("cpu"))
    with pytest.raises(ValueError, match=r"checkpoint.pt is damaged or holds more than tensors"):
        tuner._resume(None, None, {})
    assert not marker.exists()


def test_metadata_json_chooses_a_dataset_by_name_only(hostile_model, tmp_path):
    results = tmp_path / "results"
    save_model(hostile_model, results / SAFE_FOLDER)
    (results / "metadata.json").write_text(json.dumps({"dataset": str(tmp_path / "elsewhere"),
                                                       "dataset_kwargs": {"cache_root": str(tmp_path / "x")}}))
    run = load_trained_model(results)
    assert any("not a registered dataset name" in note for note in run.notes)
    assert not (tmp_path / "x").exists() and run.factory.num_entities == len(HOSTILE)
    (results / "metadata.json").write_text(json.dumps({"dataset": "ShapesKG", "dataset_kwargs": {"cache_root": str(tmp_path / "x")}}))
    from pykeen_mkgformer.kgc.saved_model import _dataset_from_configuration

    found, _, notes = _dataset_from_configuration(results)
    assert found == {"dataset": "ShapesKG", "dataset_kwargs": {}} and "cache_root" in notes[0]


def test_surrogate_labels_are_refused_up_front_by_name(hostile_model, tmp_path):
    factory = hostile_model.label_factory
    labels = [factory.entity_id_to_label[i] for i in range(factory.num_entities)]
    labels[3] = "bad\udcff"
    with pytest.raises(ValueError, match=r"1 entity labels cannot be stored.*'bad\\udcff'"):
        MultimodalTriplesFactory(
            mapped_triples=torch.empty((0, 3), dtype=torch.long),
            entity_to_id={label: i for i, label in enumerate(labels)},
            relation_to_id=factory.relation_to_id,
        )
    with pytest.raises(ValueError, match=r"1 entity descriptions cannot be stored"):
        MultimodalTriplesFactory.from_labeled_triples(np.array([["a", "r", "b"]]), entity_descriptions={"a": "x\ud800"})
    # image paths may hold them (file names that are not UTF-8) and round-trip
    images = MultimodalTriplesFactory.from_labeled_triples(np.array([["a", "r", "b"]]), entity_images={"a": ["/x/\udcff.png"]})
    path = images.to_path_binary(tmp_path / "f")
    assert MultimodalTriplesFactory.from_path_binary(path).entity_images == images.entity_images


# ---------------------------------------------------------------------- outputs
def test_commands_never_write_over_their_inputs(hostile_model, tmp_path):
    folder = tmp_path / "model"
    save_model(hostile_model, folder / SAFE_FOLDER)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    runner = CliRunner()
    head, relation = HOSTILE[-2], "rel\r1"
    same = runner.invoke(main, ["predict", "--model", str(folder), "--head", head, "--relation", relation, "--save", str(folder)])
    assert same.exit_code != 0 and "--save" in same.output and "--model" in same.output and str(folder) in same.output
    inside = runner.invoke(main, ["predict", "--model", str(folder), "--head", head, "--relation", relation,
                                  "--save", str(folder / SAFE_FOLDER / "tokenizer")])
    assert inside.exit_code != 0 and "would write over the input --model" in inside.output
    page = runner.invoke(main, ["explain", "--model", str(folder), "--head", head, "--relation", relation,
                                "--output", str(folder / SAFE_FOLDER / "model.safetensors")])
    assert page.exit_code != 0 and "would write over the input --model" in page.output
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before

    out = tmp_path / "copy"
    first = runner.invoke(main, ["predict", "--model", str(folder), "--head", head, "--relation", relation, "--save", str(out)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(main, ["predict", "--model", str(folder), "--head", head, "--relation", relation, "--save", str(out)])
    assert again.exit_code != 0 and "exists already; give --overwrite" in again.output
    forced = runner.invoke(main, ["predict", "--model", str(folder), "--head", head, "--relation", relation, "--save", str(out),
                                  "--overwrite"])
    assert forced.exit_code == 0, forced.output
    assert torch.equal(_scores(load_model(out)), _scores(hostile_model))


def test_atomic_writes_leave_the_old_output_on_failure(tmp_path):
    path = write_text(tmp_path / "metrics.json", "old")
    with pytest.raises(RuntimeError), atomic_write(path) as file:
        file.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(folder, overwrite=True) as staging:
        (staging / "weights").write_text("half")
        raise RuntimeError("killed")
    assert (folder / "weights").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "model"]
    with pytest.raises(OutputError, match="exists already"):
        with atomic_folder(folder):
            pass
    with atomic_folder(folder, overwrite=True) as staging:
        (staging / "weights").write_text("new")
    assert (folder / "weights").read_text() == "new"


def test_check_output_names_both_paths_and_follows_symlinks(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "trained_model.pkl").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(model)
    with pytest.raises(OutputError, match=r"--output .*link.* would write over the input --model .*model"):
        check_output(link, {"--model": model}, option="--output")
    with pytest.raises(OutputError, match="would write over the input --model"):
        check_output(link / "trained_model.pkl", {"--model": model}, option="--output", overwrite=True)
    assert check_output(model / "page.html", {"--model": model}, option="--output") == model / "page.html"
    assert check_output(tmp_path / "parent" / "page.html", {"--model": model}, option="--output")
    with pytest.raises(OutputError, match="would write over the input --model"):
        check_output(tmp_path, {"--model": model}, option="--save", overwrite=True)


# ---------------------------------------------------------------------- printing and reporting
def test_printed_labels_have_their_control_characters_escaped(hostile_model, tmp_path):
    assert printable("\x1b[31mred\r\n\u2028\u202e") == "\\x1b[31mred\\r\\n\\u2028\\u202e"
    save_model(hostile_model, tmp_path / "m" / SAFE_FOLDER)
    result = CliRunner().invoke(main, ["predict", "--model", str(tmp_path / "m"), "--head", "plain", "--relation", "rel\r1",
                                       "--top", str(len(HOSTILE))])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\r" not in result.output and "\u2028" not in result.output
    assert "\\x1b[31mred\\x1b[0m" in result.output and "rel\\r1" in result.output
    as_json = CliRunner().invoke(main, ["predict", "--model", str(tmp_path / "m"), "--head", "a\rb", "--relation", "</script>",
                                        "--json", "--top", str(len(HOSTILE))])
    assert {p["label"] for p in json.loads(as_json.output)["predictions"]} == set(HOSTILE)  # JSON keeps them exactly


def test_summaries_collapse_long_lists():
    text = summarize([f"label{i}" for i in range(100_000)], "entities without text", examples=3)
    assert text == "100,000 entities without text: 'label0', 'label1', 'label2' (and 99,997 more)"
    assert near_duplicates(["caf\u00e9", "cafe\u0301", "x", "x ", "y"]) == [("cafe\u0301", "caf\u00e9"), ("x", "x ")]


def _write_kg(folder: Path, triples: list[tuple[str, str, str]], entity_texts: dict[str, str], relation_texts: dict[str, str]):
    from pykeen_mkgformer.data.readers import MultimodalFiles

    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        (folder / f"{split}.tsv").write_text("".join("\t".join(t) + "\n" for t in triples), encoding="utf-8")
    (folder / "entity2text.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in entity_texts.items()), encoding="utf-8")
    (folder / "relation2text.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in relation_texts.items()), encoding="utf-8")
    return MultimodalFiles(
        training=folder / "train.tsv", validation=folder / "valid.tsv", testing=folder / "test.tsv",
        entity_texts=folder / "entity2text.tsv", relation_texts=folder / "relation2text.tsv",
        image_root=folder / "images" if (folder / "images").is_dir() else None,
    )


def test_entities_and_relations_without_text_are_counted_and_named(tmp_path):
    from pykeen_mkgformer.data.readers import load_multimodal_splits

    triples = [(f"e{i}", "r0" if i % 2 else "r1", f"e{i + 1}") for i in range(20)]
    files = _write_kg(tmp_path / "kg", triples, {"e0": "zero", "e1": "one", "ghost": "not in the graph"}, {"r0": "first"})
    with pytest.warns(UserWarning) as caught:
        training, _, _ = load_multimodal_splits(files)
    messages = [str(w.message) for w in caught]
    entities = next(m for m in messages if "entities of the triples have no text" in m)
    assert entities.startswith("19 entities") and "'e10', 'e11', 'e12', 'e13', 'e14' (and 14 more)" in entities
    assert any(m.startswith("1 relations of the triples have no text") and "'r1'" in m for m in messages)
    report = training.metadata["text_coverage"]
    assert report["entities_without_text"] == 19 and report["relations_without_text"] == 1
    assert report["unused_entity_text_keys"] == 1 and report["relations_without_text_examples"] == ["r1"]


def test_labels_equal_after_normalisation_are_an_error(tmp_path):
    from pykeen_mkgformer.data.errors import DataError
    from pykeen_mkgformer.data.readers import load_multimodal_splits

    triples = [("caf\u00e9", "r", "b"), ("cafe\u0301", "r", "b"), ("b ", "r", "c")]
    files = _write_kg(tmp_path / "kg", triples, {}, {"r": "rel"})
    with pytest.raises(DataError, match=r"2 groups of entity labels .* differ only by Unicode normalisation") as error:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_multimodal_splits(files)
    assert "'b' = 'b '" in str(error.value)


def test_image_symlinks_leaving_the_image_folder_are_refused(tmp_path):
    from pykeen_mkgformer.data.readers import list_entity_images

    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "private.jpg").write_bytes(b"x")
    root = tmp_path / "images"
    (root / "e1").mkdir(parents=True)
    (root / "e1" / "own.jpg").write_bytes(b"x")
    (root / "e1" / "leak.jpg").symlink_to(outside / "private.jpg")
    (root / "e2").symlink_to(outside)
    (root / "e3").mkdir()
    (root / "e3" / "inside.jpg").symlink_to(root / "e1" / "own.jpg")
    problems: list = []
    with pytest.warns(UserWarning, match=r"2 image entries refused"):
        images = list_entity_images(root, problems=problems)
    assert images == {"e1": (str(root / "e1" / "own.jpg"),), "e3": (str(root / "e3" / "inside.jpg"),)}
    assert sorted(Path(p).name for p, _ in problems) == ["e2", "leak.jpg"]
    assert all("symlink leading outside" in reason for _, reason in problems)


def test_task_images_refuse_symlinks_leaving_the_folder(tmp_path):
    from transformers import CLIPImageProcessorPil
    from PIL import Image

    from pykeen_mkgformer.tasks.images import InstanceImages

    outside = tmp_path / "secret"
    outside.mkdir()
    Image.new("RGB", (8, 8)).save(outside / "private.png")
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "own.png")
    (folder / "leak.png").symlink_to(outside / "private.png")
    images = InstanceImages(folder, CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = images.prepare(["own.png", "leak.png", "../secret/private.png"], progress=False)
    assert prepared[0][0] is not None and prepared[1][0] is None and prepared[2][0] is None
    reasons = dict(images.skipped)
    assert "symlink leading outside" in reasons[str(folder / "leak.png")]


def test_re_marker_strings_in_the_text_are_escaped_and_counted(minilm_tokenizer, tmp_path):
    from pykeen_mkgformer.re.data import RelationInstance, Span
    from pykeen_mkgformer.re.model import ENTITY_MARKERS, count_markers, mark_entities

    instance = RelationInstance(
        tokens=("<s>", "x</o>y", "head", "said", "tail"), head=Span("head", 2, 3), tail=Span("tail", 4, 5),
        image=None, relation="None", source="test.jsonl:1",
    )
    words = mark_entities(instance)
    assert [w for w in words if w in ENTITY_MARKERS] == ["<s>", "</s>", "<o>", "</o>"]
    assert words.index("<s>") == 2 and count_markers(instance) == 2
    tokenizer = minilm_tokenizer
    tokenizer.add_special_tokens({"additional_special_tokens": list(ENTITY_MARKERS)})
    ids = tokenizer(words, is_split_into_words=True)["input_ids"]
    marker_ids = tokenizer.convert_tokens_to_ids(list(ENTITY_MARKERS))
    assert sorted(i for i in ids if i in marker_ids) == sorted(marker_ids)  # each marker exactly once


# ---------------------------------------------------------------------- RE / NER models load without pickles
@pytest.mark.parametrize("kind", ["re", "ner"])
def test_task_models_save_and_load_as_data(kind, tiny_text, tmp_path):
    from pykeen_mkgformer.ner.model import CRFTagger
    from pykeen_mkgformer.re.model import RelationClassifier
    from pykeen_mkgformer.tasks.encoders import load_encoder

    cls = RelationClassifier if kind == "re" else CRFTagger
    torch.manual_seed(0)
    bundle = load_encoder(str(tiny_text), "tiny", fusion_layers=1)
    model = cls(bundle.encoder, 5).eval()
    model.save(tmp_path / "model")
    (tmp_path / "model" / "task.json").write_text(json.dumps({"task": kind, "labels": ["a", "b\r", "c\u2028", "<d>", "e"]}))
    loaded = cls.load(tmp_path, task=kind)
    assert loaded.labels == ["a", "b\r", "c\u2028", "<d>", "e"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match=f"holds a '{kind}' model, not 'other'"):
        cls.load(tmp_path / "model", task="other")
    assert not [p for p in (tmp_path / "model").rglob("*") if p.suffix in (".pt", ".pkl", ".bin")]


# ---------------------------------------------------------------------- layering (issue 19's rule)
def test_model_io_lives_in_kgc_which_never_imports_explain(tmp_path):
    from kgc_support import run_python

    code = (
        "import sys\n"
        "import pykeen_mkgformer.kgc.saved_model, pykeen_mkgformer.kgc.prediction, pykeen_mkgformer.kgc.new_entities\n"
        "import pykeen_mkgformer.kgc.cli\n"
        "assert not [m for m in sys.modules if m.startswith('pykeen_mkgformer.explain')], 'kgc imported explain'\n"
        "from pykeen_mkgformer.explain.results import TrainedLinkPredictor, find_model_file, load_trained_model\n"
        "from pykeen_mkgformer.kgc import saved_model\n"
        "assert load_trained_model is saved_model.load_trained_model and TrainedLinkPredictor is saved_model.TrainedLinkPredictor\n"
        "from pykeen_mkgformer.explain.link_prediction import recover_tokenizer\n"
        "assert recover_tokenizer is saved_model.recover_tokenizer\n"
        "print('ok')\n"
    )
    assert run_python(code, cwd=tmp_path).stdout.strip().endswith("ok")
    # the old place first, in a fresh interpreter: no import cycle
    assert run_python("import pykeen_mkgformer.explain.results as r; print(r.load_trained_model.__module__)",
                      cwd=tmp_path).stdout.strip().endswith("pykeen_mkgformer.kgc.saved_model")


def test_your_own_pickled_folder_converts_once_with_trust(hostile_model, tmp_path, caplog):
    """PyKEEN's layout (trained_model.pkl + training_triples/): refused, read with --trust-pickles (a warning says
    why), and --save writes the safe folder, which then opens without trust and gives the same scores."""
    folder = tmp_path / "pykeen"
    folder.mkdir()
    torch.save(hostile_model, folder / "trained_model.pkl")
    hostile_factory().to_path_binary(folder / "training_triples")
    runner = CliRunner()
    query = ["--head", "plain", "--relation", "rel\r1", "--json", "--top", "3"]
    refused = runner.invoke(main, ["predict", "--model", str(folder), *query])
    assert refused.exit_code != 0 and "is a pickle" in refused.output
    with caplog.at_level("WARNING", logger="pykeen_mkgformer.data.trust"):
        converted = runner.invoke(main, ["predict", "--model", str(folder), "--trust-pickles", "--save", str(tmp_path / "safe"), *query])
    assert converted.exit_code == 0, converted.output
    assert "runs any code it holds" in caplog.text
    reopened = runner.invoke(main, ["predict", "--model", str(tmp_path / "safe"), *query])
    assert reopened.exit_code == 0, reopened.output
    assert json.loads(reopened.stdout)["predictions"] == json.loads(converted.stdout)["predictions"]
    assert torch.equal(_scores(load_model(tmp_path / "safe")), _scores(hostile_model))
    assert load_trained_model(tmp_path / "safe").known_triples["training"].shape[0] == hostile_factory().num_triples


def test_a_task_run_never_writes_over_its_data(tmp_path):
    from pykeen_mkgformer.tasks.runner import RunOptions, _check_outputs

    data = tmp_path / "mnre"
    data.mkdir()
    (data / "train.jsonl").write_text("{}\n")
    _check_outputs(tmp_path / "out", RunOptions(data=data, output=tmp_path / "out", text_encoder="x"))
    _check_outputs(data, RunOptions(data=data, output=data, text_encoder="x"))  # new files beside the data: fine
    (data / "metrics.json").write_text("{}")  # ... but not over a file of the data folder
    with pytest.raises(OutputError, match=r"--output .*metrics.json would write over the input --data .*mnre"):
        _check_outputs(data, RunOptions(data=data, output=data, text_encoder="x"))
    with pytest.raises(OutputError, match=r"would write over the input --images"):
        _check_outputs(tmp_path / "out", RunOptions(data=data, output=tmp_path / "out", text_encoder="x",
                                                    images=tmp_path / "out" / "model" / "images"))


def test_an_old_dataset_cache_is_rebuilt_not_unpickled(tmp_path):
    """PyKEEN's cached copy of a dataset written by an older version (pickled base.pth): rebuilt from the data."""
    import gzip

    from pykeen_mkgformer.data import ShapesKG

    marker = tmp_path / "payload-ran"
    dataset = ShapesKG(cache_root=tmp_path / "shapes", num_entities=12)
    cache = tmp_path / "cache"
    dataset.to_directory_binary(cache)
    for split in ("training", "testing", "validation"):
        with gzip.open(cache / split / "multimodal.json.gz", "rt", encoding="utf-8") as file:
            stored = json.load(file)
        del stored["base"]
        with gzip.open(cache / split / "multimodal.json.gz", "wt", encoding="utf-8") as file:
            json.dump(stored, file)
        torch.save(Payload(marker), cache / split / "base.pth")
    again = ShapesKG.from_directory_binary(cache)
    assert not marker.exists()
    assert again.training.entity_to_id == dataset.training.entity_to_id
    assert torch.equal(again.training.mapped_triples, dataset.training.mapped_triples)
    assert ShapesKG.from_directory_binary(cache).training.num_triples == dataset.training.num_triples  # the rebuilt copy
