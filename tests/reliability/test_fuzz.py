"""Property-based fuzzing (hypothesis) of every reader and of the image decoder; see ``fuzz_support.py``.

CI runs a few hundred examples per reader, derandomized (the same inputs every run);
``MKGFORMER_FUZZ_EXAMPLES`` raises the count, and ``benchmarks/fuzz_campaign.py`` runs the long
campaign recorded in RESULTS.md.
"""

from __future__ import annotations

import os
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from transformers import CLIPImageProcessorPil

from fuzz_support import FUZZED_READERS, check_image, check_text, image_files, text_files

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # named skips warn by design

EXAMPLES = int(os.environ.get("MKGFORMER_FUZZ_EXAMPLES", "250"))

ci = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def _reader_test(name: str):
    reader = FUZZED_READERS[name]

    @ci
    @given(file=text_files(reader))
    def test(file):
        check_text(reader, file)

    test.__name__ = f"test_fuzz_{name.lower().replace(' ', '_')}"
    test.__doc__ = f"{name}: parsed data or the package's own error; every line parsed, blank or reported."
    return test


test_fuzz_lp_triples = _reader_test("LP triples")
test_fuzz_lp_entity2text = _reader_test("LP entity2text")
test_fuzz_mnre_jsonl = _reader_test("MNRE JSONL")
test_fuzz_mnre_dict_literals = _reader_test("MNRE dict literals")
test_fuzz_conll = _reader_test("CoNLL")

PROCESSOR = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


@ci
@given(file=image_files())
def test_fuzz_image_decoder(file):
    """Random formats, modes, sizes and damage: an RGB image the processor takes, or an ImageError naming the file."""
    check_image(file, PROCESSOR)


@pytest.mark.parametrize("name", sorted(FUZZED_READERS))
def test_every_reader_is_fuzzed(name):
    assert f"test_fuzz_{name.lower().replace(' ', '_')}" in globals()


# ---------------------------------------------------------------------- label maps and --add-entities
from fuzz_support import (  # noqa: E402
    check_factory_round_trip,
    check_model_round_trip,
    check_new_entities,
    label_maps,
    new_entity_files,
)


@ci
@given(labels=label_maps(surrogates=False))
def test_fuzz_label_maps_round_trip_through_a_factory_folder(labels):
    """Any label (tabs, CR, LF, U+2028, NUL, quotes, markup) comes back unchanged, without reading a pickle."""
    check_factory_round_trip(labels)


@pytest.fixture(scope="module")
def tiny_model_factory(tmp_path_factory):
    import torch

    from pykeen_mkgformer.kgc import MKGformer
    from pykeen_mkgformer.kgc.presets import tiny_model_kwargs

    kwargs = tiny_model_kwargs(max_images=0, entity_modeling_epochs=0, progress=False,
                               image_cache_dir=str(tmp_path_factory.mktemp("pixels")), tokenizer_vocab_size=200)

    def build(factory):
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return MKGformer(triples_factory=factory, **kwargs).eval()

    return build


@settings(ci, max_examples=max(4, EXAMPLES // 25))
@given(labels=label_maps(max_entities=5))
def test_fuzz_saved_model_round_trip_keeps_labels_and_scores(labels, tiny_model_factory):
    """save -> load of a tiny model over generated labels: the same labels and scores; a lone surrogate is refused."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        check_model_round_trip(labels, tiny_model_factory)
    finally:
        torch.set_num_threads(previous)


@ci
@given(data=new_entity_files())
def test_fuzz_add_entities_files(data):
    """--add-entities files: entities with clean labels, or a NewEntityError naming file:line; nothing else."""
    check_new_entities(data)
