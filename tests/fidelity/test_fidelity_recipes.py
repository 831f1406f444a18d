"""Every number of the official recipes pinned to the official scripts' flags.

The tables below are the flags (and the in-code defaults they rely on) of ``zjunlp/MKGformer``, each
with the file it is read from. ``RERecipe.official()``, ``NERRecipe.official()``,
``KGCRecipe.official()`` and the numbers of ``benchmarks/configs/mkgformer_{wn18img,fb15k237img}.json``
must equal them. (``mkgformer_tiny.json`` is a CPU smoke configuration, not an official recipe.)
"""

from __future__ import annotations

import json

import pytest

from kgc_support import REPO_ROOT
from pykeen_mkgformer.kgc.recipe import KGCRecipe, resolve_recipe
from pykeen_mkgformer.ner.recipe import OFFICIAL_TAGS, NERRecipe
from pykeen_mkgformer.re.recipe import RERecipe

# ------------------------------------------------------------------------------ MRE
OFFICIAL_RE = {
    "epochs": 12,  # MRE/run_mre.sh --num_epochs=12
    "batch_size": 32,  # MRE/run_mre.sh --batch_size=32
    "lr": 1e-5,  # MRE/run_mre.sh --lr=1e-5
    "warmup_ratio": 0.06,  # MRE/run_mre.sh --warmup_ratio=0.06
    "max_length": 80,  # MRE/run_mre.sh --max_seq=80
    "padding": "max_length",  # MRE/processor/dataset.py encode_plus(padding='max_length')
    "weight_decay": 0.01,  # MRE/modules/train.py before_multimodal_train: weight_decay 1e-2
    "decay_all": True,  # MRE/modules/train.py: one group, every parameter named 'model' decays
    "vision_lr": None,  # MRE/modules/train.py: one learning rate for the whole UnimoModel
    "head_lr": None,  # (the classifier is not in the optimizer at all, see train_classifier)
    "train_classifier": False,  # MRE/modules/train.py: only parameters whose name contains 'model'
    "head_dropout": 0.0,  # MRE/models/unimo_model.py: nn.Dropout(0.5) defined, never applied
    "max_grad_norm": None,  # MRE/modules/train.py: no clipping between backward and step
    "missing_images": "zeros",  # MRE/processor/dataset.py: torch.zeros((3, aux_size, aux_size)) padding
    "crop_source": "index",  # MRE/run.py DATA_PATH *_auximgs (per data id) and *_img2crop (per image stem)
    "marker_init": "official",  # MRE/models/modeling_unimo.py _get_resized_embeddings: normal_(0, 0.02)
    "marker_placement": "official",  # MRE/processor/dataset.py: markers appended before word i
    "fusion_variant": "official",  # MRE/models/modeling_unimo.py
}
#: crop sides in patches of the 32 px CLIP-B/32 patch: MRE/run_mre.sh --aux_size=128 --rcnn_size=64
OFFICIAL_CROP_SIDES = (128 // 32, 64 // 32)

# ------------------------------------------------------------------------------ MNER
OFFICIAL_NER = {
    "epochs": 30,  # MNER/run_mner.sh --num_epochs=30
    "batch_size": 16,  # MNER/run_mner.sh --batch_size=16
    "lr": 5e-5,  # MNER/run_mner.sh --lr=5e-5 (the 'text' parameter group)
    "vision_lr": 3e-5,  # MNER/modules/train.py multiModal_before_train: 'vision' group lr 3e-5
    "head_lr": 5e-2,  # MNER/modules/train.py: 'crf' / 'fc' group lr 5e-2 (= MNER/run.py --crf_lr default)
    "warmup_ratio": 0.01,  # MNER/run_mner.sh --warmup_ratio=0.01
    "max_length": 128,  # MNER/run_mner.sh --max_seq=128
    "padding": "max_length",  # MNER/processor/datasets.py encode_plus(padding='max_length')
    "weight_decay": 0.01,  # MNER/modules/train.py: weight_decay 1e-2 in all three groups
    "decay_all": True,  # MNER/modules/train.py: no group without decay
    "max_grad_norm": None,  # MNER/modules/train.py: no clipping
    "head_dropout": 0.1,  # MNER/models/unimo_model.py: nn.Dropout(0.1) before fc
    "crf_scope": "pieces",  # MNER/models/unimo_model.py: crf over attention_mask of all positions
    "missing_images": "zeros",  # MNER/processor/datasets.py: zero-image padding
    "crop_source": "index",  # MNER/run.py DATA_PATH *_auximgs (per image name) and img2crop
    "fusion_variant": "official",  # MNER/models/modeling_unimo.py
}
#: MNER/run.py LABEL_LIST, ids from 1, "PAD" = 0 (= MNER/run_mner.sh --ignore_idx=0)
OFFICIAL_NER_LABELS = ["O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "X", "[CLS]", "[SEP]"]

# ------------------------------------------------------------------------------ MKG (link prediction)
OFFICIAL_KGC_RECIPE = {
    "entity_modeling_smoothing": 0.1,  # MKG/lit_models/transformer.py --label_smoothing default 0.1, pretrain scripts --bce 0
    "entity_modeling_weight_decay": 0.01,  # MKG/lit_models/base.py --weight_decay default 0.01
    "entity_modeling_warmup_ratio": 0.1,  # MKG/data/data_module.py --warm_up_radio default 0.1
    "entity_modeling_rows": "all",  # MKG/lit_models/transformer.py _freeze_attention: every 'word' parameter trains
    "token_init": "normal",  # MKG/models/modeling_unimo.py resize_token_embeddings: normal_(0, initializer_range)
    "mlm_transform": "random",  # MKG/main.py loads only BertModel / CLIP vision weights, not the MLM head
    "query_format": "official",  # MKG/data/processor.py solve / convert_examples_to_features
    "entity_modeling_patience": 5,  # MKG/main.py EarlyStopping(monitor="Eval/mrr", patience=5)
    "entity_modeling_validate_every": 1,  # MKG/scripts/pretrain_fb15k-237-image.sh --check_val_every_n_epoch 1
    "image_choice": "official",  # MKG/data/data_module.py os.listdir + random.seed(1); random.sample(k=7)
    "missing_images": "zeros",  # MKG/data/data_module.py torch.zeros((3, 224, 224)) etc. for absent images
    "text_cleaning": "official",  # MKG/data/processor.py replace("\\n", " ").replace("\\", "")
    # item 10: MKG/main.py ModelCheckpoint(monitor="Eval/hits10", mode="max"), in both stages (the pretrain
    # run's best_model_path is the --checkpoint that stage 2 loads)
    "entity_modeling_checkpoint_metric": "hits_at_10",
    "checkpoint_metric": "hits_at_10",  # MKG/main.py ModelCheckpoint(monitor=metric_name) with metric_name "Eval/hits10"
    "checkpoint_restore": "always",  # MKG/main.py: after trainer.fit, load_state_dict(torch.load(best_model_path)), stopped or not
    "validation_filter": "all",  # MKG/data/processor.py _create_examples: dataset_list train.tsv, dev.tsv, test.tsv (cut to train.tsv only for training)
}
OFFICIAL_KGC_FILES = {
    "mkgformer_wn18img.json": {
        # MKG/scripts/pretrain_wn18-images.sh
        "entity_modeling_epochs": 30,  # --max_epochs=30
        "entity_modeling_batch_size": 128,  # --batch_size 128
        "entity_modeling_lr": 7e-5,  # --lr 7e-5
        # MKG/scripts/wn18-images.sh
        "max_seq_length": 32,  # --max_seq_length 32
        "num_epochs": 31,  # --max_epochs=31
        "batch_size": 128,  # --batch_size 128
        "lr": 5e-5,  # --lr 5e-5
        "frequency": 3,  # --check_val_every_n_epoch 3
        "evaluation_batch_size": 128,  # --eval_batch_size 128
        "loss": "BCEWithLogits",  # --bce 1
        "entity_modeling_validate_every": 10,  # pretrain_wn18-images.sh --check_val_every_n_epoch 10
    },
    "mkgformer_fb15k237img.json": {
        # MKG/scripts/pretrain_fb15k-237-image.sh
        "entity_modeling_epochs": 15,  # --max_epochs=15
        "entity_modeling_batch_size": 64,  # --batch_size 64
        "entity_modeling_lr": 5e-4,  # --lr 5e-4
        # MKG/scripts/fb15k-237-image.sh (commit e6a5fa9)
        "max_seq_length": 64,  # --max_seq_length 64
        "num_epochs": 12,  # --max_epochs=12
        "batch_size": 96,  # --batch_size 96
        "lr": 4e-5,  # --lr 4e-5
        "frequency": 1,  # --check_val_every_n_epoch 1
        "evaluation_batch_size": 128,  # --eval_batch_size 128
        "loss": "BCEWithLogits",  # --bce 1 (its --label_smoothing 0.3 only acts with --bce 0)
        "entity_modeling_validate_every": 1,  # pretrain_fb15k-237-image.sh --check_val_every_n_epoch 1
    },
}
OFFICIAL_KGC_SHARED = {
    "random_seed": 7,  # MKG/main.py --seed default 7
    "patience": 5,  # MKG/main.py EarlyStopping(monitor="Eval/mrr", patience=5)
    "metric": "inverse_harmonic_mean_rank",  # MKG/main.py EarlyStopping monitor "Eval/mrr"
    "relative_delta": 0.0,  # MKG/main.py EarlyStopping min_delta default 0.0 (any increase counts)
    "stopper": "selectingearly",  # MKG/main.py ModelCheckpoint + best_model_path loaded before trainer.test (item 10)
    "eps": 1e-8,  # MKG/lit_models/transformer.py configure_optimizers eps=1e-8
    "warmup_ratio": 0.1,  # MKG/data/data_module.py --warm_up_radio default 0.1 (per step)
    "weight_decay": 0.01,  # MKG/lit_models/base.py --weight_decay default 0.01
    "exclude": ["bias", "LayerNorm.weight"],  # MKG/lit_models/transformer.py no_decay_param
    "fusion_layers": 4,  # MKG/models/modeling_unimo.py: the last 4 layers are fused
    "text_encoder": "bert-base-uncased",  # MKG/scripts/*.sh --model_name_or_path bert-base-uncased
    "vision_encoder": "openai/clip-vit-base-patch32",  # MKG/data/data_module.py CLIPProcessor checkpoint
}


@pytest.mark.parametrize(("recipe", "table"), [(RERecipe.official(), OFFICIAL_RE), (NERRecipe.official(), OFFICIAL_NER)])
def test_task_recipes_equal_the_official_flags(recipe, table):
    values = recipe.to_dict()
    for field, expected in table.items():
        assert values[field] == expected, field
    # every field of the recipe is pinned (no number left unchecked)
    assert set(values) - set(table) == {"recipe"}


def test_official_ner_tag_set_and_crop_groups():
    from pykeen_mkgformer.tasks.images import OfficialCropImages

    assert list(OFFICIAL_TAGS) == ["PAD", *OFFICIAL_NER_LABELS]
    assert tuple(side for _, side in OfficialCropImages.GROUPS) == OFFICIAL_CROP_SIDES
    assert tuple(count for count, _ in OfficialCropImages.GROUPS) == (3, 3)  # "select 3 img" in both readers


def test_task_paper_recipes_differ_where_the_official_code_is_a_defect():
    re_paper, ner_paper = RERecipe.paper(), NERRecipe.paper()
    assert re_paper.train_classifier and re_paper.head_dropout is None and re_paper.max_grad_norm == 1.0
    assert re_paper.padding == ner_paper.padding == "longest"
    assert re_paper.missing_images == ner_paper.missing_images == "masked"
    assert RERecipe.official(lr=3e-5).lr == 3e-5 and RERecipe.official(lr=3e-5).warmup_ratio == 0.06
    with pytest.raises(ValueError, match="padding"):
        RERecipe(padding="max")
    assert RERecipe.from_dict(RERecipe.official().to_dict()) == RERecipe.official()


def test_kgc_official_recipe_equals_the_official_flags():
    values = KGCRecipe.official().to_dict()
    assert set(values) == set(OFFICIAL_KGC_RECIPE)  # every field pinned
    for field, expected in OFFICIAL_KGC_RECIPE.items():
        assert values[field] == expected, field


@pytest.mark.parametrize("name", sorted(OFFICIAL_KGC_FILES))
def test_experiment_files_equal_the_official_flags(name):
    settings = json.loads((REPO_ROOT / "benchmarks" / "configs" / name).read_text())["pipeline"]
    table = {**OFFICIAL_KGC_FILES[name], **OFFICIAL_KGC_SHARED}
    model, training = settings["model_kwargs"], settings["training_kwargs"]
    warmup, decay = training["callbacks_kwargs"]
    found = {
        "entity_modeling_epochs": model["entity_modeling_epochs"],
        "entity_modeling_batch_size": model["entity_modeling_batch_size"],
        "entity_modeling_lr": model["entity_modeling_lr"],
        "max_seq_length": model["max_seq_length"],
        "num_epochs": training["num_epochs"],
        "batch_size": training["batch_size"],
        "lr": settings["optimizer_kwargs"]["lr"],
        "frequency": settings["stopper_kwargs"]["frequency"],
        "evaluation_batch_size": settings["evaluation_kwargs"]["batch_size"],
        "loss": settings["loss"],
        "entity_modeling_validate_every": resolve_recipe(model["recipe"]).entity_modeling_validate_every,
        "random_seed": settings["random_seed"],
        "patience": settings["stopper_kwargs"]["patience"],
        "metric": settings["stopper_kwargs"]["metric"],
        "relative_delta": settings["stopper_kwargs"]["relative_delta"],
        "stopper": settings["stopper"],
        "eps": settings["optimizer_kwargs"]["eps"],
        "warmup_ratio": warmup["warmup_ratio"],
        "weight_decay": decay["weight_decay"],
        "exclude": decay["exclude"],
        "fusion_layers": model["fusion_layers"],
        "text_encoder": model["text_encoder"],
        "vision_encoder": model["vision_encoder"],
    }
    assert found == table
    # the decay is the callback's (AdamW-style, decoupled), not Adam's L2 term; the warm-up spans the run
    assert settings["optimizer"] == "Adam" and settings["optimizer_kwargs"]["weight_decay"] == 0.0
    assert warmup["num_epochs"] == training["num_epochs"]
    # item 10: the stopper restores the best state when training ends (it must know when), and filters
    # validation with the test triples of the pipeline's own dataset
    stopper = settings["stopper_kwargs"]
    assert stopper["num_epochs"] == training["num_epochs"]
    assert (stopper["filter_dataset"], stopper["filter_dataset_kwargs"]) == (settings["dataset"], settings["dataset_kwargs"])
    assert model["fusion_variant"] == "official"
    recipe = model["recipe"]
    assert recipe == "official" or (recipe["base"] == "official" and set(recipe) == {"base", "entity_modeling_validate_every"})
    # every number of the file is one of the pinned ones (a new number must be added to the table)
    numbers = _numbers({key: value for key, value in settings.items() if key != "model_kwargs"}) | _numbers(
        {key: value for key, value in model.items() if key != "recipe"}
    )
    pinned = {value for value in table.values() if isinstance(value, (int, float)) and not isinstance(value, bool)}
    assert numbers - pinned <= {0.0, warmup["num_epochs"]}, numbers - pinned


def _numbers(value) -> set:
    if isinstance(value, dict):
        return set().union(*(_numbers(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_numbers(v) for v in value)) if value else set()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {value}
    return set()


def test_warmup_steps_are_not_rounded():
    """Item 7: the official trainers pass ``warmup_ratio * steps`` unrounded: NER's 0.01 x 30 steps = 0.3."""
    import torch

    from pykeen_mkgformer.tasks.runner import training_settings
    from pykeen_mkgformer.tasks.training import linear_schedule

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1.0)
    schedule = linear_schedule(optimizer, training_settings(NERRecipe.official(), seed=0), total_steps=30)
    rates = []
    for _ in range(3):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    # step 0: 0 / max(1, 0.3) = 0 (rounded to 0 warm-up steps it would be the full rate); then (30 - s) / 29.7
    assert rates == pytest.approx([0.0, 29 / 29.7, 28 / 29.7])
