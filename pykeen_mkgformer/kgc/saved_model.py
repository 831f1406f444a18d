"""Saving and opening a trained MKGformer as data, never as code.

A saved model is the folder ``mkgformer/`` (inside a PyKEEN results folder, or on its own):

- ``config.json``: the constructor's arguments (the two towers as their configs, so no pretrained
  checkpoint is needed to reopen it), the image processor, the package version;
- ``model.safetensors``: ``model.state_dict()`` (safetensors: tensors only);
- ``labels.json``: entity labels, names, descriptions and image paths, relation labels and texts,
  by id (JSON: any string round-trips, tabs, line breaks and U+2028 included);
- ``triples.safetensors``: the known triples (``training``, and ``validation`` / ``testing`` when
  known at saving time), for the filtered ranks of ``explain``;
- ``tokenizer/``: the model's own tokenizer (Hugging Face's JSON files);
- ``encoder/``: the hybrid encoder alone as a Hugging Face model (``HybridEncoderModel.save_pretrained``:
  ``config.json`` and safetensors weights, a copy of the encoder's part of ``model.safetensors``): after
  ``import pykeen_mkgformer.encoder``, ``transformers.AutoModel.from_pretrained(folder / "encoder")``
  gives the trained encoder to other code (e.g. to fine-tune it on RE); its word embeddings are the
  tokenizer's vocabulary, then one row per entity, then one per relation direction. Opening the
  model reads ``model.safetensors`` only.

Opening it runs no code from the folder: the model is rebuilt from the JSON configuration and the
weights are read with safetensors. Image paths in ``labels.json`` are only ever decoded as images.

PyKEEN's own results folders (``trained_model.pkl``, ``training_triples/base.pth``) are pickles:
they are opened only with ``trust_pickles=True`` (``--trust-pickles``), with a warning; see
:mod:`pykeen_mkgformer.data.trust`. The folder's ``metadata.json`` or experiment configuration may
name the dataset (a registered name only: paths and other file arguments there are not obeyed).

Folders understood by :func:`load_trained_model`:

- ``DIR/mkgformer/`` (:func:`save_model`, :func:`save_pipeline_result`, the demo, ``predict --save``);
- ``PipelineResult.save_to_directory(DIR)``: ``trained_model.pkl``, ``metadata.json``, ``training_triples/``
  (pickles: ``trust_pickles=True``);
- ``pykeen experiments run CONFIG -d DIR``: ``DIR/<date-time>_<id>/replicates/replicate-NNNNN/``
  (give ``DIR`` for its latest run, the run's folder, or a replicate folder).

The dataset (for labels, texts, images and the known triples that filter the rank) is, in order:
the one given (``dataset=``); the one the folder's configuration names; the saved labels and triples.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "SAFE_FOLDER",
    "TrainedLinkPredictor",
    "save_model",
    "save_pipeline_result",
    "load_model",
    "load_trained_model",
    "find_model_file",
    "find_saved_model",
    "check_labels",
    "recover_tokenizer",
]

logger = logging.getLogger(__name__)

#: the safe model's folder inside a results folder
SAFE_FOLDER = "mkgformer"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
LABELS_FILE = "labels.json"
TRIPLES_FILE = "triples.safetensors"
TOKENIZER_FOLDER = "tokenizer"
ENCODER_FOLDER = "encoder"
FORMAT = "pykeen-mkgformer/saved-model"
FORMAT_VERSION = 1

MODEL_FILE = "trained_model.pkl"
TRAINING_FOLDER = "training_triples"
CONFIGURATION_STEM = "configuration_copied"
SPLIT_NAMES = {"validation": ("valid", "dev", "val"), "testing": ("test",)}

#: constructor arguments not stored: replaced by what the folder holds, or not needed to score
_REPLACED = {"triples_factory", "text_encoder", "vision_encoder", "text_encoder_kwargs", "vision_encoder_kwargs", "tokenizer"}
_DROPPED = {"image_cache_dir", "loss", "loss_kwargs", "progress", "regularizer", "regularizer_kwargs"}
#: image processor classes that may be rebuilt from a folder's JSON
_PROCESSORS = ("CLIPImageProcessor", "CLIPImageProcessorPil", "CLIPImageProcessorFast",
               "ViTImageProcessor", "ViTImageProcessorPil", "ViTImageProcessorFast")


@dataclass
class TrainedLinkPredictor:
    """A trained model with the graph it was trained on."""

    model: Any
    #: a :class:`~pykeen_mkgformer.data.MultimodalTriplesFactory` with the model's ids (labels, texts, images)
    factory: Any
    #: split name -> known id-based triples (``training``, ``validation``, ``testing``; those found)
    known_triples: dict[str, torch.Tensor]
    #: where things came from, for the page
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- labels
from ..data.labels import check_labels  # noqa: E402  (re-exported: where it was first defined)

def _the_hybrid(model: Any) -> Any:
    from ..encoder import HybridTransformer

    for module in model.modules():
        if isinstance(module, HybridTransformer):
            return module
    raise TypeError(f"{type(model).__name__} holds no HybridTransformer: not an MKGformer.")


def _jsonable(name: str, value: Any) -> Any:
    """A constructor argument as JSON (paths as strings, dataclasses as dicts, layouts as pairs)."""
    from transformers import PretrainedConfig

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, PretrainedConfig):
        return value.to_dict()
    if hasattr(value, "groups") and dataclasses.is_dataclass(value):  # an ImageLayout
        return [[int(count), int(side)] for count, side in value.groups]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(name, dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(key): _jsonable(f"{name}.{key}", item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(f"{name}[{i}]", item) for i, item in enumerate(value)]
    raise TypeError(f"The model argument {name}={value!r} ({type(value).__name__}) cannot be stored as JSON.")


def _constructor_config(model: Any) -> dict[str, Any]:
    given = dict(getattr(model, "init_kwargs", None) or {})
    if not given and not hasattr(model, "init_kwargs"):
        raise TypeError(
            f"This {type(model).__name__} does not record its constructor arguments (saved by an older version): "
            "build it again with this version to save it in the safe format."
        )
    hybrid = _the_hybrid(model)
    kwargs = {
        key: _jsonable(key, value) for key, value in given.items() if key not in _REPLACED | _DROPPED
    }
    kwargs["text_encoder"] = hybrid.text_config.to_dict()
    kwargs["vision_encoder"] = hybrid.vision_config.to_dict()
    processor = getattr(getattr(model, "images", None), "processor", None)
    return dict(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        model=type(model).__name__,
        kwargs=kwargs,
        source=dict(
            text_encoder=_jsonable("text_encoder", given.get("text_encoder")),
            vision_encoder=_jsonable("vision_encoder", given.get("vision_encoder")),
        ),
        image_processor=None if processor is None else _jsonable("image_processor", processor.to_dict()),
        num_added_entities=int(getattr(model, "num_added_entities", 0)),
        entity_modeling_done=bool(getattr(model, "entity_modeling_done", False)),
    )


def _labels_document(factory: Any, num_added: int) -> dict[str, Any]:
    entities = [factory.entity_id_to_label[i] for i in range(factory.num_entities)]
    relations = [factory.relation_id_to_label[i] for i in range(factory.real_num_relations)]
    check_labels("entity labels", entities)
    check_labels("relation labels", relations)
    metadata = dict(getattr(factory, "metadata", None) or {})
    return dict(
        entities=entities,
        entity_names=list(factory.entity_names),
        entity_descriptions=list(factory.entity_descriptions),
        entity_images=[list(paths) for paths in factory.entity_images],
        relations=relations,
        relation_texts=list(factory.relation_texts),
        create_inverse_triples=bool(factory.create_inverse_triples),
        num_added_entities=num_added,
        trained_on=str(metadata["path"]) if metadata.get("path") else None,
        # entities / relations read without text when the data were loaded (pykeen_mkgformer.data.readers)
        text_coverage=metadata.get("text_coverage"),
    )


def _sibling_triples(factory: Any) -> dict[str, torch.Tensor]:
    """Validation / testing triples read (at saving time) from the files next to the training file."""
    path = (getattr(factory, "metadata", None) or {}).get("path")
    found = {}
    if path:
        for split, sibling in _sibling_splits(Path(path)).items():
            try:
                found[split] = _read_labeled_split(sibling, factory)
            except (ValueError, OSError) as error:
                logger.info("not storing the %s triples of %s: %s", split, sibling, error)
    return found


def save_model(
    model: Any,
    folder: str | Path,
    *,
    known_triples: Mapping[str, torch.Tensor] | None = None,
    training: Any = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a safe folder (see the module docstring), atomically.

    :param model: an MKGformer (with :attr:`label_factory`)
    :param folder: the folder to write (the whole folder is replaced atomically)
    :param known_triples: id-based triples by split (``training``, ``validation``, ``testing``), for
        the filtered ranks of ``explain``; default: the training factory's (and the split files next to
        its training file)
    :param training: the training triples factory (default: the model's labels, without triples)
    :param overwrite: replace an existing folder
    :raises ValueError: for labels that cannot be stored (named), before anything is written
    :raises OutputError: for an existing folder without ``overwrite``
    """
    from safetensors.torch import save_file
    from safetensors.torch import save_model as save_weights

    from ..data.atomic import atomic_folder, write_json

    labels = getattr(model, "label_factory", None)
    if labels is None:
        raise TypeError(f"{type(model).__name__} has no label_factory: not an MKGformer of this version.")
    config = _constructor_config(model)
    document = _labels_document(labels, config["num_added_entities"])
    if known_triples is None:
        known_triples = {}
        if training is not None:
            known_triples = {"training": training.mapped_triples, **_sibling_triples(training)}
    triples = {split: torch.as_tensor(value, dtype=torch.long).detach().cpu().contiguous().view(-1, 3)
               for split, value in known_triples.items()}
    tokenizer = getattr(model, "tokenizer", None)
    with atomic_folder(folder, overwrite=overwrite) as staging:
        write_json(staging / CONFIG_FILE, config)
        write_json(staging / LABELS_FILE, document, indent=None)
        save_weights(model, str(staging / WEIGHTS_FILE))
        save_file(triples, str(staging / TRIPLES_FILE))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(staging / TOKENIZER_FOLDER))
        _the_hybrid(model).save_pretrained(staging / ENCODER_FOLDER)
    return Path(folder)


def save_pipeline_result(
    result: Any, directory: str | Path, *, overwrite: bool = False, pickle: bool = True, dataset: Any = None
) -> Path:
    """``result.save_to_directory(directory)`` plus, for an MKGformer, the safe model in ``directory/mkgformer/``,
    all written aside and renamed into place.

    :param pickle: also write PyKEEN's pickled ``trained_model.pkl`` (for PyKEEN's own tools)
    :param dataset: the dataset trained on, to store its validation and testing triples for ``explain``
    """
    from ..data.atomic import atomic_folder

    known = None
    if dataset is not None:
        known = {"training": dataset.training.mapped_triples, "validation": dataset.validation.mapped_triples,
                 "testing": dataset.testing.mapped_triples}
    with atomic_folder(directory, overwrite=overwrite) as staging:
        result.save_to_directory(staging, save_replicates=pickle)
        if getattr(result.model, "label_factory", None) is not None:  # an MKGformer (other models: PyKEEN's files only)
            save_model(result.model, staging / SAFE_FOLDER, known_triples=known, training=result.training)
    return Path(directory)


# ---------------------------------------------------------------------- finding
def find_saved_model(folder: str | Path) -> Path | None:
    """The safe model folder of ``folder`` (itself, or its ``mkgformer/``), or None."""
    folder = Path(folder)
    for candidate in (folder, folder / SAFE_FOLDER):
        if (candidate / CONFIG_FILE).is_file() and (candidate / WEIGHTS_FILE).is_file():
            return candidate
    return None


def find_model_file(folder: Path, replicate: int | None = None) -> tuple[Path, list[str]]:
    """The model of a results folder, or of one replicate of an experiment folder: its safe folder
    (``mkgformer/``) when it has one, else ``trained_model.pkl``.

    :raises FileNotFoundError: naming the folder and what was looked for
    """
    folder = Path(folder)
    notes: list[str] = []

    def found(results: Path) -> Path:
        return find_saved_model(results) or results / MODEL_FILE

    if find_saved_model(folder) or (folder / MODEL_FILE).is_file():
        if replicate is not None:
            raise ValueError(f"{folder} is a single results folder; --replicate applies to experiment folders only.")
        return found(folder), notes
    pattern = "replicate-*"
    replicates = sorted(p for p in (folder / "replicates").glob(pattern) if find_saved_model(p) or (p / MODEL_FILE).is_file())
    if not replicates:
        # `pykeen experiments run -d DIR` writes DIR/<date-time>_<uuid>/replicates/...
        runs = sorted({path.parents[1] for path in folder.glob(f"*/replicates/{pattern}")
                       if find_saved_model(path) or (path / MODEL_FILE).is_file()})
        if runs:
            if len(runs) > 1:
                notes.append(f"{len(runs)} experiment runs in {folder}; explaining the latest, {runs[-1].name} (give its folder to choose).")
            folder = runs[-1]
            replicates = sorted(p for p in (folder / "replicates").glob(pattern) if find_saved_model(p) or (p / MODEL_FILE).is_file())
    if replicates:
        if replicate is None:
            chosen = replicates[0]
            if len(replicates) > 1:
                notes.append(f"{len(replicates)} replicates in {folder}; explaining {chosen.name} (choose with --replicate).")
        else:
            matches = [path for path in replicates if int(path.name.split("-")[-1]) == replicate]
            if not matches:
                raise FileNotFoundError(f"{folder} has no replicate {replicate}; found {[path.name for path in replicates]}.")
            chosen = matches[0]
        return found(chosen), notes
    raise FileNotFoundError(
        f"{folder} holds no trained model: expected {folder / SAFE_FOLDER}/ (save_model, save_pipeline_result), "
        f"{folder / MODEL_FILE} (PipelineResult.save_to_directory) "
        f"or {folder}/[<run>/]replicates/replicate-*/{MODEL_FILE} (pykeen experiments run)."
    )


def _results_folder(model_path: Path) -> Path:
    """The PyKEEN results folder a model file or safe folder belongs to."""
    if model_path.name == MODEL_FILE or model_path.name == SAFE_FOLDER:
        return model_path.parent
    return model_path


# ---------------------------------------------------------------------- loading
# the model's own tokenizer, else rebuilt and checked: one function, kept with the query inputs
from .inputs import recover_tokenizer  # noqa: E402


def _image_processor(document: Mapping[str, Any] | None) -> Any:
    """Rebuild an image processor from its JSON (only the known CLIP / ViT classes)."""
    import transformers

    if not document:
        return None
    name = str(document.get("image_processor_type") or "")
    if name not in _PROCESSORS:
        raise ValueError(f"Unknown image processor {name!r} in a saved model; expected one of {_PROCESSORS}.")
    cls = getattr(transformers, name, None) or getattr(transformers, name.removesuffix("Pil").removesuffix("Fast"))
    return cls.from_dict(dict(document))


def _processor_key(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in ("image_processor_type", "processor_class", "_processor_class")}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{path}: not a readable JSON file ({type(error).__name__}: {error}).") from error


def _labels_factory(document: Mapping[str, Any], training: torch.Tensor | None, path: Path) -> Any:
    from ..data import MultimodalTriplesFactory

    try:
        entities, relations = list(document["entities"]), list(document["relations"])
        for kind, labels in (("entity", entities), ("relation", relations)):
            check_labels(f"{kind} labels", labels)
            repeated = len(labels) - len(set(labels))
            if repeated:
                raise ValueError(f"{repeated} {kind} labels are repeated.")
        factory = MultimodalTriplesFactory(
            mapped_triples=training if training is not None else torch.empty((0, 3), dtype=torch.long),
            entity_to_id={label: i for i, label in enumerate(entities)},
            relation_to_id={label: i for i, label in enumerate(relations)},
            create_inverse_triples=bool(document.get("create_inverse_triples", False)),
            metadata={"path": document["trained_on"]} if document.get("trained_on") else None,
            entity_names=[str(x) for x in document["entity_names"]],
            entity_descriptions=[str(x) for x in document["entity_descriptions"]],
            entity_images=[[str(p) for p in paths] for paths in document["entity_images"]],
            relation_texts=[str(x) for x in document["relation_texts"]],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a label file of a saved MKGformer ({type(error).__name__}: {error}).") from error
    return factory


def _load_safe(folder: Path, device: str | torch.device) -> tuple[Any, Any, dict[str, torch.Tensor]]:
    """Model, training factory and known triples of a safe folder."""
    from safetensors.torch import load_file
    from safetensors.torch import load_model as load_weights

    from .model import MKGformer

    config = _read_json(folder / CONFIG_FILE)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{folder / CONFIG_FILE} is not the configuration of a saved MKGformer (format {FORMAT!r}).")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{folder} was saved by a newer version (format {config['format_version']}); update pykeen-mkgformer.")
    triples = load_file(str(folder / TRIPLES_FILE)) if (folder / TRIPLES_FILE).is_file() else {}
    bad = [name for name, value in triples.items() if value.dim() != 2 or value.shape[1] != 3 or value.dtype != torch.long]
    if bad:
        raise ValueError(f"{folder / TRIPLES_FILE}: {bad} are not (n, 3) integer triples.")
    document = _read_json(folder / LABELS_FILE)
    factory = _labels_factory(document, triples.get("training"), folder / LABELS_FILE)
    for name, value in triples.items():
        if value.numel() and (value.min() < 0 or value[:, [0, 2]].max() >= factory.num_entities
                              or value[:, 1].max() >= factory.num_relations):
            raise ValueError(f"{folder / TRIPLES_FILE}: the {name} triples name ids outside the saved labels.")
    kwargs = dict(config.get("kwargs") or {})
    if not isinstance(kwargs.get("text_encoder"), dict) or not isinstance(kwargs.get("vision_encoder"), dict):
        raise ValueError(f"{folder / CONFIG_FILE}: the towers must be stored as configs (dicts).")
    tokenizer_folder = folder / TOKENIZER_FOLDER
    if tokenizer_folder.is_dir():
        from transformers import AutoTokenizer

        kwargs["tokenizer"] = AutoTokenizer.from_pretrained(str(tokenizer_folder), trust_remote_code=False)
    labels = factory.clone_and_exchange_triples(mapped_triples=torch.empty((0, 3), dtype=torch.long))
    try:
        model = MKGformer(triples_factory=labels, progress=False, **kwargs)
    except TypeError as error:
        raise ValueError(f"{folder / CONFIG_FILE}: arguments that this version's MKGformer does not take ({error}).") from error
    processor = config.get("image_processor")
    images = getattr(model, "images", None)
    if processor and images is not None and _processor_key(images.processor.to_dict()) != _processor_key(processor):
        # the towers were rebuilt from configs: use the checkpoint's own image processor again
        model.images = type(images)(
            images.image_paths, processor=_image_processor(processor), layout=images.layout, progress=False
        )
    missing, unexpected = load_weights(model, str(folder / WEIGHTS_FILE), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{folder / WEIGHTS_FILE} does not fit the model of {folder / CONFIG_FILE}: "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}."
        )
    model.num_added_entities = int(config.get("num_added_entities", 0))
    model.label_factory = labels
    model.to(torch.device(device)).eval()
    return model, factory, triples


def load_model(
    folder: str | Path,
    *,
    device: str | torch.device = "cpu",
    replicate: int | None = None,
    trust_pickles: bool = False,
) -> Any:
    """The trained MKGformer of a folder, with :attr:`label_factory` set, in evaluation mode.

    :param folder: a safe model folder, a results folder holding one, or (with ``trust_pickles``) a
        PyKEEN results / experiment folder with ``trained_model.pkl``
    :param trust_pickles: allow reading PyKEEN's pickles (they can run code; only for your own files)
    :raises UnsafeFileError: for a pickle without ``trust_pickles``, naming the file
    """
    return load_trained_model(folder, device=device, replicate=replicate, trust_pickles=trust_pickles, dataset_from_folder=False).model


def _load_pickled(model_file: Path, device: str | torch.device, trust_pickles: bool) -> tuple[Any, Any]:
    from ..data import MultimodalTriplesFactory
    from ..data.trust import load_pickle, trusting_pickles

    alternative = (
        "Safe alternative: ask for the folder's mkgformer/ (written by pykeen_mkgformer.kgc.save_pipeline_result, "
        "save_model, the demo or 'predict --save'), or convert your own folder once with "
        "'pykeen-mkgformer predict --model DIR --trust-pickles --save DIR2 ...'."
    )
    model = load_pickle(model_file, trust=trust_pickles, alternative=alternative, map_location=torch.device(device))
    training_folder = model_file.parent / TRAINING_FOLDER
    saved = None
    if training_folder.is_dir():
        with trusting_pickles(trust_pickles):
            saved = MultimodalTriplesFactory.from_path_binary(training_folder)
    if getattr(model, "label_factory", None) is None and saved is not None:
        model.label_factory = saved.clone_and_exchange_triples(mapped_triples=torch.empty((0, 3), dtype=torch.long))
    model.eval()
    return model, saved


def _dataset_from_configuration(results_folder: Path) -> tuple[dict[str, Any] | None, Path | None, list[str]]:
    """The dataset named by the folder's experiment configuration or ``metadata.json``: a registered
    name and plain (non-text) keyword arguments only; paths and other strings are not obeyed."""
    from pykeen.datasets import dataset_resolver

    notes: list[str] = []
    candidates = [results_folder]
    if results_folder.parent.name == "replicates":
        candidates.append(results_folder.parent.parent)
    found: list[tuple[Any, Any, Path]] = []
    for folder in candidates:
        for path in sorted(folder.glob(f"{CONFIGURATION_STEM}.json")):
            config = _read_json(path)
            pipeline = config.get("pipeline", config) if isinstance(config, dict) else {}
            if isinstance(pipeline, dict) and "dataset" in pipeline:
                found.append((pipeline["dataset"], pipeline.get("dataset_kwargs"), path))
    metadata = results_folder / "metadata.json"
    if not found and metadata.is_file():
        data = _read_json(metadata)
        if isinstance(data, dict) and data.get("dataset"):
            found.append((data["dataset"], data.get("dataset_kwargs"), metadata))
    for name, kwargs, path in found:
        if not isinstance(name, str) or name != Path(name).name or dataset_resolver.lookup(name, default=None) is None:
            notes.append(f"{path} names the dataset {name!r}, which is not a registered dataset name: not used (give --dataset).")
            continue
        kwargs = kwargs if isinstance(kwargs, dict) else {}
        kept = {key: value for key, value in kwargs.items() if isinstance(value, (bool, int, float)) and not isinstance(value, str)}
        ignored = sorted(set(kwargs) - set(kept))
        if ignored:
            notes.append(f"{path}: dataset arguments {ignored} are not taken from a model folder (give --dataset-kwargs).")
        return dict(dataset=name, dataset_kwargs=kept), path, notes
    return None, None, notes


def load_trained_model(
    folder: str | Path,
    *,
    dataset: Any = None,
    dataset_kwargs: Mapping[str, Any] | None = None,
    replicate: int | None = None,
    device: str | torch.device = "cpu",
    trust_pickles: bool = False,
    dataset_from_folder: bool = True,
) -> TrainedLinkPredictor:
    """Load a trained model and the graph it belongs to (see the module docstring for the order).

    :param folder: a safe model folder, a PyKEEN results folder or an experiment output folder
    :param dataset: a dataset name (:func:`pykeen.datasets.get_dataset`) or object; found from the folder if None
    :param dataset_kwargs: keyword arguments for ``get_dataset`` with a name
    :param replicate: which replicate of an experiment folder (default: the first)
    :param device: where the model runs
    :param trust_pickles: allow reading PyKEEN's pickles (``trained_model.pkl``, ``base.pth``)
    :param dataset_from_folder: look up the dataset named by the folder's configuration
    :raises UnsafeFileError: for a pickle without ``trust_pickles``
    :raises FileNotFoundError: when no model or no dataset can be found (the message says what was tried)
    :raises ValueError: when the dataset does not fit the model
    """
    from pykeen.datasets import get_dataset

    folder = Path(folder)
    model_path, notes = find_model_file(folder, replicate)
    facts: dict[str, Any] = {"model": str(model_path)}
    if model_path.name == MODEL_FILE:
        model, saved = _load_pickled(model_path, device, trust_pickles)
        known_saved = {"training": saved.mapped_triples} if saved is not None else {}
        source_name = str(model_path.parent / TRAINING_FOLDER)
    else:
        model, saved, known_saved = _load_safe(model_path, device)
        source_name = str(model_path / LABELS_FILE)

    source = None
    if dataset is None and dataset_from_folder:
        found, config_path, config_notes = _dataset_from_configuration(_results_folder(model_path))
        notes.extend(config_notes)
        if found is not None:
            dataset, dataset_kwargs = found["dataset"], found["dataset_kwargs"]
            source = f"{config_path}"
    if dataset is not None:
        instance = get_dataset(dataset=dataset, dataset_kwargs=dict(dataset_kwargs or {}))
        name = dataset if isinstance(dataset, str) else type(dataset).__name__
        facts["dataset"] = name + (f" {dict(dataset_kwargs)}" if dataset_kwargs else "")
        if source:
            facts["dataset found in"] = source
        _check_same_graph(model, instance.training, saved, f"The dataset {name}")
        known = {"training": instance.training.mapped_triples, "validation": instance.validation.mapped_triples,
                 "testing": instance.testing.mapped_triples}
        return TrainedLinkPredictor(model, instance.training, known, facts, notes)

    if saved is None:
        raise FileNotFoundError(
            f"Cannot tell which dataset {model_path} was trained on: no {CONFIGURATION_STEM}.* (pykeen experiments run), "
            f"no 'dataset' in metadata.json and no {TRAINING_FOLDER}/ next to it. Give it with --dataset NAME."
        )
    _check_same_graph(model, saved, None, source_name)
    known = dict(known_saved)
    training_path = (saved.metadata or {}).get("path")
    facts["dataset"] = source_name + (f" (trained on {training_path})" if training_path else "")
    if model_path.name == MODEL_FILE and training_path:  # the older layout: read the split files next to it
        for split, path in _sibling_splits(Path(training_path)).items():
            known[split] = _read_labeled_split(path, saved)
    missing = [split for split in SPLIT_NAMES if split not in known]
    if missing:
        notes.append(
            f"No {' / '.join(missing)} triples stored with the model: the rank is filtered with the known triples "
            "found only; give --dataset for PyKEEN's full filter."
        )
    return TrainedLinkPredictor(model, saved, known, facts, notes)


def _read_labeled_split(path: Path, factory: Any) -> torch.Tensor:
    """Label-based triples of a split file mapped to the factory's ids."""
    from ..data.readers import read_triples

    triples = read_triples(path)
    ids = []
    for column, mapping in ((0, factory.entity_to_id), (1, factory.relation_to_id), (2, factory.entity_to_id)):
        unknown = sorted(set(triples[:, column].tolist()) - set(mapping))
        if unknown:
            raise ValueError(f"{path}: labels {unknown[:5]} are not in the model's training factory.")
        ids.append([mapping[label] for label in triples[:, column].tolist()])
    return torch.as_tensor(ids, dtype=torch.long).T.reshape(-1, 3)


def _sibling_splits(training_path: Path) -> dict[str, Path]:
    """The validation and testing files next to a training file (``train.tsv`` -> ``valid.tsv``, ``test.tsv``)."""
    name = training_path.name
    if not name.startswith("train"):
        return {}
    rest = name[len("train") :]
    found = {}
    for split, stems in SPLIT_NAMES.items():
        for stem in stems:
            for candidate in (training_path.with_name(stem + rest), training_path.with_name(stem + rest + ".gz")):
                if candidate.is_file():
                    found[split] = candidate
                    break
            if split in found:
                break
    return found


def _check_same_graph(model: Any, factory: Any, saved: Any | None, source: str) -> None:
    if factory.num_entities != model.num_entities or factory.real_num_relations != model.num_real_relations:
        raise ValueError(
            f"{source} has {factory.num_entities} entities and {factory.real_num_relations} relations, but the model "
            f"was trained on {model.num_entities} entities and {model.num_real_relations} relations."
        )
    if saved is not None and (saved.entity_to_id != factory.entity_to_id or saved.relation_to_id != factory.relation_to_id):
        raise ValueError(f"{source} numbers its entities or relations differently from the model's saved labels.")
    for name in ("entity_names", "entity_descriptions", "entity_images", "relation_texts"):
        if not hasattr(factory, name):
            raise TypeError(f"{source} is not multimodal (its training factory has no {name}).")

