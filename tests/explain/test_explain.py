"""``pykeen-mkgformer explain`` on a tiny ShapesKG model: heatmap numbers, ranks, the page in a real browser.

One model is trained per module (2 fused layers, 3 images per entity at two resolutions, one
training entity stripped of its images) and saved the way PyKEEN saves results.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from kgc_support import REPO_ROOT, run_command, single_thread, tiny_model_kwargs
from PIL import Image

from pykeen_mkgformer.cli import main
from pykeen_mkgformer.data import ShapesKG
from pykeen_mkgformer.encoder.fusion import CAFTextLayer, CorrelationAwareFusion
from pykeen_mkgformer.explain import (
    FusedLayer,
    explain_link_prediction,
    image_slots,
    load_trained_model,
    render_html,
    render_png,
)
from pykeen_mkgformer.explain.browser import find_chromium
from pykeen_mkgformer.kgc.saved_model import save_pipeline_result

LAYOUT = [[1, 32], [2, 16]]  # 8 px patches: 16 + 4 + 4 patches, plus a class token per image
EXPECTED_STARTS = [0, 17, 22]


pytestmark = pytest.mark.usefixtures("one_thread")  # the root conftest: one intra-op thread


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny MKGformer trained on ShapesKG, saved with ``save_pipeline_result`` (PyKEEN's files and the
    safe ``mkgformer/``); one entity has no images."""
    from pykeen.pipeline import pipeline

    root = tmp_path_factory.mktemp("explain")
    with single_thread():
        dataset = ShapesKG(cache_root=root / "shapes", images_per_entity=3, create_inverse_triples=True)
        held_out = set(dataset.testing.mapped_triples[:, 0].tolist()) | set(dataset.validation.mapped_triples[:, 0].tolist())
        imageless, partial = [e for e in dict.fromkeys(dataset.training.mapped_triples[:, 0].tolist()) if e not in held_out][:2]
        images = dataset.training.entity_images  # shared by the three splits' factories
        images[imageless] = ()
        images[partial] = images[partial][:2]  # the second 16 px slot stays empty
        result = pipeline(
            dataset=dataset,
            model="MKGformer",
            model_kwargs=tiny_model_kwargs(root / "pixels", fusion_layers=2, image_layout=LAYOUT),
            training_loop="lcwa",
            loss="crossentropy",
            optimizer="adam",
            optimizer_kwargs=dict(lr=3e-3),
            training_kwargs=dict(num_epochs=5, batch_size=32, use_tqdm=False),
            evaluation_kwargs=dict(batch_size=64, use_tqdm=False),
            random_seed=3,
        )
    folder = root / "result"
    save_pipeline_result(result, folder)
    labels = dataset.training.entity_id_to_label
    return dict(folder=folder, dataset=dataset, imageless=labels[imageless], partial=labels[partial], root=root)


@pytest.fixture(scope="module")
def run(trained):
    return load_trained_model(trained["folder"])


def _test_triple(run, index: int = 0) -> tuple[str, str, str]:
    h, r, t = run.known_triples["testing"][index].tolist()
    factory = run.factory
    return factory.entity_id_to_label[h], factory.relation_id_to_label[r], factory.entity_id_to_label[t]


@pytest.fixture(scope="module")
def explanation(run):
    head, relation, tail = _test_triple(run)
    return explain_link_prediction(run.model, run.factory, head=head, relation=relation, tail=tail, known_triples=run.known_triples)


# ---------------------------------------------------------------------- the visual token layout
def test_image_slots_with_and_without_class_tokens():
    with_cls = image_slots(LAYOUT, 8, 27, [True, True, False])
    assert [s.token_start for s in with_cls] == EXPECTED_STARTS
    assert [s.patch_start for s in with_cls] == [1, 18, 23]
    assert [s.grid for s in with_cls] == [4, 2, 2] and all(s.has_class_token for s in with_cls)
    assert [s.present for s in with_cls] == [True, True, False]
    # the official variant's link prediction input: patch embeddings only
    patches_only = image_slots(LAYOUT, 8, 24, [True, True, True])
    assert [s.token_start for s in patches_only] == [0, 16, 20] and not any(s.has_class_token for s in patches_only)
    # the official RE / NER input: one bare class token before all images
    leading_cls = image_slots(LAYOUT, 8, 25, [True, True, True])
    assert [s.token_start for s in leading_cls] == [1, 17, 21] and not any(s.has_class_token for s in leading_cls)
    with pytest.raises(ValueError, match="26 visual tokens fit neither 24 patches nor 27"):
        image_slots(LAYOUT, 8, 26, [True] * 3)
    with pytest.raises(ValueError, match=r"sides \[12\]"):
        image_slots([[1, 12]], 8, 2, [True])


def test_heatmap_folds_a_row_into_the_patch_grid():
    slots = image_slots(LAYOUT, 8, 27, [True] * 3)
    caf = np.arange(2 * 27, dtype=float).reshape(2, 27)
    layer = FusedLayer(text_layer=1, vision_layer=1, caf=caf)
    # image 2 (16 px, 2x2 patches): class token at 17, patches 18..21 row-major
    assert layer.class_weight(1, slots[1]) == caf[1, 17]
    np.testing.assert_array_equal(layer.heatmap(1, slots[1]), [[caf[1, 18], caf[1, 19]], [caf[1, 20], caf[1, 21]]])
    assert layer.heatmap(0, slots[0])[3, 2] == caf[0, 1 + 3 * 4 + 2]


# ---------------------------------------------------------------------- numbers vs hand computation
def _hand_attention(run, explanation_fn):
    """Run ``explanation_fn`` with hooks that capture the fused layers' inputs; recompute CAF and PGI by hand."""
    encoder = run.model.interaction.encoder
    captured: dict[str, list] = {"caf": [], "text_key": [], "q": [], "k": []}
    handles = []
    m = encoder.config.fusion_layers
    for layer in encoder.text_layers[-m:]:
        assert isinstance(layer, CAFTextLayer) and isinstance(layer.fusion, CorrelationAwareFusion)
        handles.append(layer.fusion.register_forward_hook(lambda mod, args, out: captured["caf"].append((mod, args))))
        handles.append(layer.attention.self.key.register_forward_hook(lambda mod, args, out: captured["text_key"].append(out)))
    for layer in encoder.vision_layers[-m:]:
        handles.append(layer.self_attn.q_proj.register_forward_hook(lambda mod, args, out: captured["q"].append(out)))
        handles.append(layer.self_attn.k_proj.register_forward_hook(lambda mod, args, out: captured["k"].append(out)))
    try:
        result = explanation_fn()
    finally:
        for handle in handles:
            handle.remove()
    # the explanation runs the query twice (predict_t, then with attentions): keep the last pass of each layer
    caf, pgi = [], []
    heads = encoder.vision_config.num_attention_heads
    for k in range(m):
        module, (text_states, visual_states, visual_mask, *_rest) = captured["caf"][-m + k]
        scores = text_states[0] @ module.visual_projection(visual_states[0]).T
        scores = scores.masked_fill(~visual_mask[0][None, :], float("-inf"))
        caf.append(torch.softmax(scores, dim=-1).numpy())
        text_key, q, key = captured["text_key"][-m + k][0], captured["q"][-m + k][0], captured["k"][-m + k][0]
        n_text = text_key.shape[0]
        split = lambda x: x.view(x.shape[0], heads, -1).transpose(0, 1)  # noqa: E731
        logits = split(q) @ split(torch.cat([text_key, key])).transpose(-1, -2) / (q.shape[-1] // heads) ** 0.5
        allowed = torch.cat([torch.ones(n_text, dtype=torch.bool), visual_mask[0]])
        weights = torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)
        pgi.append(weights[:, visual_mask[0], :n_text].mean(dim=(0, 1)).numpy())
    return result, caf, pgi


@pytest.mark.parametrize("case", ["test head, all images", "two of three images"])
def test_heatmaps_and_pgi_bars_equal_a_hand_computation(run, trained, case):
    if case == "test head, all images":
        head, relation, tail = _test_triple(run, 3)
        present = [True, True, True]
    else:
        head, relation, tail = trained["partial"], run.factory.relation_id_to_label[1], None
        present = [True, True, False]
    result, caf, pgi = _hand_attention(
        run, lambda: explain_link_prediction(run.model, run.factory, head=head, relation=relation, tail=tail)
    )
    assert len(result.layers) == 2
    assert [s.token_start for s in result.images] == EXPECTED_STARTS and [s.present for s in result.images] == present
    for layer, hand_caf, hand_pgi in zip(result.layers, caf, pgi):
        np.testing.assert_allclose(layer.caf, hand_caf, atol=1e-5)
        np.testing.assert_allclose(layer.pgi, hand_pgi, atol=1e-5)
        for token in range(len(result.tokens)):
            # each image's patch grid is the matching slice of the hand-computed row
            for slot in result.images:
                start = slot.token_start + 1
                np.testing.assert_allclose(
                    layer.heatmap(token, slot), hand_caf[token, start : start + slot.grid**2].reshape(slot.grid, slot.grid), atol=1e-5
                )
                assert layer.class_weight(token, slot) == pytest.approx(float(hand_caf[token, slot.token_start]), abs=1e-5)
                if not slot.present:  # an empty slot gets no weight
                    assert layer.heatmap(token, slot).sum() == 0 and layer.class_weight(token, slot) == 0
            # a row sums to 1 over the real patches and class tokens
            total = sum(layer.heatmap(token, s).sum() + layer.class_weight(token, s) for s in result.images if s.present)
            assert total == pytest.approx(1.0, abs=1e-5)
    assert [slot.pixels is not None for slot in result.images] == present
    # the page carries the same numbers
    page = render_html(result)
    data = json.loads(page.split('id="explanation-data">', 1)[1].split("</script>", 1)[0])
    np.testing.assert_allclose(np.asarray(data["layers"][1]["caf"]), caf[1], atol=1e-5)
    assert page.count('class="heatmap"') == 2 * sum(present)


def test_ranking_and_filtered_rank_match_pykeen(run, explanation):
    model, factory = run.model, run.factory
    h, r, t = run.known_triples["testing"][0].tolist()
    with torch.no_grad():
        scores = model.predict_t(torch.tensor([[h, r]]))[0]
    top = torch.argsort(scores, descending=True)[:10].tolist()
    listed = [factory.entity_to_id[a.label] for a in explanation.answers if a.position <= 10]
    assert listed == top
    assert [a.score for a in explanation.answers[:10]] == pytest.approx(scores[top].tolist(), abs=1e-5)
    # filtered realistic rank by hand: other true tails of (h, r) in any split are removed
    known = torch.cat(list(run.known_triples.values()))
    others = {int(x) for x in known[(known[:, 0] == h) & (known[:, 1] == r), 2]} - {t}
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[list(others)] = False
    better = int(((scores > scores[t]) & keep).sum())
    ties = int(((scores == scores[t]) & keep).sum()) - 1
    assert explanation.target_rank == pytest.approx(1 + better + ties / 2)
    assert explanation.target == factory.entity_id_to_label[t]
    marked = [a for a in explanation.answers if a.known_in]
    assert all(factory.entity_to_id[a.label] in others | {t} for a in marked)


def test_head_prediction_reads_the_mirrored_query(run):
    model, factory = run.model, run.factory
    head, relation, tail = _test_triple(run, 1)
    result = explain_link_prediction(model, factory, head=head, relation=relation, tail=tail, side="head", known_triples=run.known_triples)
    h, r, t = run.known_triples["testing"][1].tolist()
    with torch.no_grad():
        scores = model.predict_h(torch.tensor([[r, t]]))[0]
    assert result.answers[0].label == factory.entity_id_to_label[int(scores.argmax())]
    # the input holds the known tail's token and the inverse relation's token, never the head
    entity_tokens = [tok.text for tok in result.tokens if tok.kind == "entity"]
    assert entity_tokens[0].startswith(f"[E] {tail}") and not any(tok.startswith(f"[E] {head}") for tok in entity_tokens)
    assert any(tok.text == f"[R⁻¹] {relation}" for tok in result.tokens)
    assert result.query.startswith("(?, ")


def test_tokens_are_the_model_input(explanation, run):
    kinds = [tok.kind for tok in explanation.tokens]
    assert kinds.count("mask") == 1 and explanation.token_order()[0] == kinds.index("mask")
    assert explanation.token_order()[1] == kinds.index("entity")
    # the word pieces are real words of the relation text and the entity text, not ids
    words = {tok.text for tok in explanation.tokens if tok.kind == "text"}
    assert {"object", "number"} <= words
    # the dataclass as JSON, for notebooks and other tools
    data = json.loads(json.dumps(explanation.to_dict()))
    assert data["tokens"][0]["text"] == "[CLS]" and len(data["layers"][0]["caf"]) == len(explanation.tokens)


def test_an_imageless_entity_gives_a_page_that_says_so(run, trained):
    label = trained["imageless"]
    result = explain_link_prediction(run.model, run.factory, head=label, relation=run.factory.relation_id_to_label[0])
    assert not result.has_images and all(layer.caf is None and layer.pgi is None for layer in result.layers)
    assert any("has no images" in note for note in result.notes)
    page = render_html(result)
    assert "has no images" in page and 'class="heatmap"' not in page and "empty slot" in page
    with pytest.raises(ValueError, match="no images"):
        render_png(result)


def test_errors_name_the_offending_input(run, tmp_path):
    with pytest.raises(ValueError, match="Unknown entity 'object_99'.*Close"):
        explain_link_prediction(run.model, run.factory, head="object_99", relation="same_shape_as")
    with pytest.raises(ValueError, match="Unknown relation 'same shap as'"):
        explain_link_prediction(run.model, run.factory, head="object_001", relation="same shap as")
    with pytest.raises(FileNotFoundError, match="holds no trained model"):
        load_trained_model(tmp_path)
    result = CliRunner().invoke(main, ["explain", "--model", str(tmp_path), "--head", "x", "--relation", "y", "--output", str(tmp_path / "p.html")])
    assert result.exit_code != 0 and "holds no trained model" in result.output


# ---------------------------------------------------------------------- the command
def test_command_writes_page_and_png_from_a_results_folder(trained, explanation, run, tmp_path):
    head, relation, tail = _test_triple(run)
    page, png = tmp_path / "report.html", tmp_path / "heatmaps.png"
    result = CliRunner().invoke(
        main,
        ["explain", "--model", str(trained["folder"]), "--head", head, "--relation", relation, "--tail", tail,
         "--top", "5", "--output", str(page), "--png", str(png), "--png-token", "[MASK]", "--png-token", "1"],
    )
    assert result.exit_code == 0, result.output
    assert f"filtered realistic rank {explanation.target_rank:g}" in result.output
    text = page.read_text()
    assert text.count('<tr class="') >= 5 and "http://" not in text and "https://" not in text
    with Image.open(png) as image:
        # 2 layers x 2 tokens, three images side by side
        assert image.width > 3 * 64 and image.height > 4 * 160


def test_command_on_an_experiment_folder_finds_the_dataset(tmp_path, monkeypatch):
    """``pykeen experiments run`` on the tiny config (ShapesKG, 1 epoch): the dataset is read from its configuration
    copy (its name; the cache_root path there is not obeyed). The folder holds pickles only: refused without
    --trust-pickles."""
    monkeypatch.setenv("PYSTOW_HOME", str(tmp_path / "pystow"))
    config = json.loads((REPO_ROOT / "benchmarks" / "configs" / "mkgformer_tiny.json").read_text())
    settings = config["pipeline"]
    settings["dataset"] = "ShapesKG"
    settings["dataset_kwargs"] = dict(create_inverse_triples=True, cache_root=str(tmp_path / "shapes"))
    settings["model_kwargs"].update(entity_modeling_epochs=0, progress=False, image_cache_dir=str(tmp_path / "pixels"))
    settings["training_kwargs"]["num_epochs"] = 1
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    pykeen = Path(sys.executable).with_name("pykeen")
    run_command([str(pykeen), "experiments", "run", str(path), "-d", str(tmp_path / "out")], cwd=tmp_path, timeout=400)
    page = tmp_path / "page.html"
    command = ["explain", "--model", str(tmp_path / "out"), "--tail", "object_001", "--relation", "same colour as", "--output", str(page)]
    refused = CliRunner().invoke(main, command)
    assert refused.exit_code != 0 and "trained_model.pkl is a pickle" in refused.output and "--trust-pickles" in refused.output
    assert not page.exists()
    result = CliRunner().invoke(main, [*command, "--trust-pickles"])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert "configuration_copied.json" in text and "(?, same_colour_as, object_001" in text
    assert "cache_root" in result.output  # the path argument of the configuration was not used, and it says so


# ---------------------------------------------------------------------- the page in a real browser
def _browser_or_skip() -> None:
    reason = None
    if find_chromium() is None:
        reason = "Chromium is not installed (Debian: apt-get install chromium chromium-driver)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the Python package playwright is not installed (pip install -e '.[tests]')"
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def test_page_in_headless_chromium(explanation, tmp_path):
    from pykeen_mkgformer.explain.browser import open_page
    from pykeen_mkgformer.explain.colors import COLORMAP, MAX_OPACITY
    from pykeen_mkgformer.explain.html import write_html

    _browser_or_skip()
    path = write_html(explanation, tmp_path / "report.html")
    present = [s for s in explanation.images if s.present]
    with open_page(path) as session:
        page = session.page
        sizes = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        # the query's images and each answer's first image
        assert len(sizes) == len(present) + sum(answer.image is not None for answer in explanation.answers)
        assert all(complete and width > 0 for complete, width in sizes), sizes
        for k in range(len(explanation.layers)):
            layer = page.locator(f'.layer[data-layer="{k}"]')
            assert layer.locator(".heatmap").count() == len(present)
            assert layer.locator(".cell").count() == sum(s.grid**2 for s in present)

        def colours(layer: int) -> list[str]:
            return page.eval_on_selector_all(
                f'.layer[data-layer="{layer}"] .cell', "els => els.map(e => getComputedStyle(e).backgroundColor)"
            )

        first = explanation.token_order()[0]
        assert page.get_attribute(f'.tok[data-token="{first}"]', "aria-pressed") == "true"
        # the token whose heatmap differs most from the first token's
        caf = explanation.layers[0].caf
        other = int(np.abs(caf - caf[first]).sum(axis=1).argmax())
        before = colours(0)
        page.click(f'.tok[data-token="{other}"]')
        after = colours(0)
        assert after != before
        assert page.get_attribute(f'.tok[data-token="{other}"]', "aria-pressed") == "true"
        assert page.input_value("#token-select") == str(other)
        # the strongest patch of the new token gets the top colour at full opacity
        slot = max(present, key=lambda s: explanation.layers[0].heatmap(other, s).max())
        cell = int(explanation.layers[0].heatmap(other, slot).argmax())
        top = page.eval_on_selector(
            f'.layer[data-layer="0"] .heatmap[data-image="{slot.index}"] .cell[data-cell="{cell}"]',
            "e => getComputedStyle(e).backgroundColor",
        )
        assert top == f"rgba({', '.join(map(str, COLORMAP[-1]))}, {MAX_OPACITY})"
        # the selector drives the same state
        page.select_option("#token-select", str(first))
        assert colours(0) == before
        page.screenshot(path=str(tmp_path / "shot.png"), full_page=True)
    assert not session.errors, session.errors
    assert not [text for kind, text in session.console if kind in ("error", "warning")], session.console
    assert session.requests == [path.resolve().as_uri()], session.requests  # the page itself, nothing else
    assert (tmp_path / "shot.png").stat().st_size > 10_000


#: labels that try to leave the page's JSON block or its markup (issue 22)
HOSTILE_LABELS = [
    "</script><script>document.title='pwned'</script>",
    "<!--<script>",
    "</ScRiPt ><img src=x onerror=\"document.title='pwned'\">",
    "line\u2028sep\u2029end",
    "]]>&amp;\\\"'",
]


def test_page_with_hostile_labels_in_headless_chromium(run, tmp_path):
    """Labels with script-block breakers, comments, markup and line separators: the page's script still
    works (a click recolours), no node is injected, nothing runs, the labels show as text."""
    from pykeen_mkgformer.data import MultimodalTriplesFactory
    from pykeen_mkgformer.explain.browser import open_page
    from pykeen_mkgformer.explain.html import render_html, script_json, write_html

    assert "<" not in script_json({"x": HOSTILE_LABELS}) and "\u2028" not in script_json(HOSTILE_LABELS)
    assert json.loads(script_json({"x": HOSTILE_LABELS}))["x"] == HOSTILE_LABELS
    _browser_or_skip()
    factory = run.factory
    head_id, relation_id, _ = run.known_triples["testing"][0].tolist()
    labels = [factory.entity_id_to_label[i] for i in range(factory.num_entities)]
    order = torch.argsort(run.model.predict_t(torch.tensor([[head_id, relation_id]]))[0], descending=True).tolist()
    for hostile, entity in zip(HOSTILE_LABELS, [head_id, *[e for e in order if e != head_id]]):
        labels[entity] = hostile
    relations = [factory.relation_id_to_label[i] for i in range(factory.real_num_relations)]
    relations[relation_id] = "<!--</script>\u2028"
    hostile = MultimodalTriplesFactory(
        mapped_triples=factory.mapped_triples,
        entity_to_id={label: i for i, label in enumerate(labels)},
        relation_to_id={label: i for i, label in enumerate(relations)},
        create_inverse_triples=factory.create_inverse_triples,
        entity_names=labels,
        entity_descriptions=[f"{label} described" for label in labels],
        entity_images=factory.entity_images,
        relation_texts=relations,
    )
    explanation = explain_link_prediction(run.model, hostile, head=labels[head_id], relation=relations[relation_id], top=6)
    assert HOSTILE_LABELS[0] in explanation.tokens[1].text or any(HOSTILE_LABELS[0] in t.text for t in explanation.tokens)
    path = write_html(explanation, tmp_path / "hostile.html")
    assert render_html(explanation).count("<script") == 2
    with open_page(path) as session:
        page = session.page
        assert page.title().startswith("MKGformer case analysis")
        assert page.eval_on_selector_all("script", "els => els.length") == 2
        assert page.eval_on_selector_all("img[src='x']", "els => els.length") == 0
        shown = page.inner_text("body")
        assert HOSTILE_LABELS[0] in shown  # the query's entity, as text
        answers = page.inner_text("#answers")
        assert HOSTILE_LABELS[1] in answers and HOSTILE_LABELS[2] in answers
        data = json.loads(page.text_content("#explanation-data"))
        assert any(HOSTILE_LABELS[0] in token for token in data["tokens"])
        first = explanation.token_order()[0]
        other = next(i for i in explanation.token_order() if i != first)
        page.click(f'.tok[data-token="{other}"]')
        assert page.get_attribute(f'.tok[data-token="{other}"]', "aria-pressed") == "true"
        assert page.get_attribute(f'.tok[data-token="{first}"]', "aria-pressed") == "false"
        assert page.title().startswith("MKGformer case analysis")
    assert not session.errors, session.errors
    assert not [text for kind, text in session.console if kind in ("error", "warning")], session.console
    assert session.requests == [path.resolve().as_uri()], session.requests
