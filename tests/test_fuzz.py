"""Property-based fuzzing (hypothesis) of every reader and of the image decoder; see ``fuzz_support.py``.

CI runs a few hundred examples per reader, derandomized (the same inputs every run);
``MKGFORMER_FUZZ_EXAMPLES`` raises the count, and ``benchmarks/fuzz_campaign.py`` runs the long
campaign recorded in RESULTS.md.
"""

from __future__ import annotations

import os

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
