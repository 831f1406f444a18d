"""Open a trained MKGformer from a folder that PyKEEN wrote, and find the graph it was trained on.

Folders understood:

- ``PipelineResult.save_to_directory(DIR)`` (also what ``pykeen-mkgformer demo`` writes per model):
  ``trained_model.pkl``, ``metadata.json``, ``results.json``, ``training_triples/``;
- ``pykeen experiments run CONFIG -d DIR``: ``DIR/<date-time>_<id>/configuration_copied.json`` and
  ``.../replicates/replicate-NNNNN/trained_model.pkl`` (give ``DIR`` for its latest run, the run's
  folder, or a replicate folder).

The dataset (for labels, texts, images, and the known triples that filter the rank) is, in order:

1. the one given (``dataset=`` / ``--dataset``, a name for :func:`pykeen.datasets.get_dataset` or a
   dataset object, with ``dataset_kwargs``);
2. the one the folder's configuration names (``configuration_copied.*`` of an experiment, or a
   ``dataset`` entry in ``metadata.json``);
3. the training factory in ``training_triples/`` (entity names, texts, images and training triples),
   with the validation and testing triples read from the files next to the training file it
   recorded (``valid``/``dev`` and ``test``, plain or ``.gz``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["TrainedLinkPredictor", "load_trained_model", "find_model_file"]

logger = logging.getLogger(__name__)

MODEL_FILE = "trained_model.pkl"
TRAINING_FOLDER = "training_triples"
CONFIGURATION_STEM = "configuration_copied"
SPLIT_NAMES = {"validation": ("valid", "dev", "val"), "testing": ("test",)}


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


def find_model_file(folder: Path, replicate: int | None = None) -> tuple[Path, list[str]]:
    """``trained_model.pkl`` of a results folder, or of one replicate of an experiment folder.

    :raises FileNotFoundError: naming the folder and what was looked for
    """
    folder = Path(folder)
    notes: list[str] = []
    if (folder / MODEL_FILE).is_file():
        if replicate is not None:
            raise ValueError(f"{folder} is a single results folder; --replicate applies to experiment folders only.")
        return folder / MODEL_FILE, notes
    replicates = sorted((folder / "replicates").glob(f"replicate-*/{MODEL_FILE}"))
    if not replicates:
        # `pykeen experiments run -d DIR` writes DIR/<date-time>_<uuid>/replicates/...
        runs = sorted({path.parents[2] for path in folder.glob(f"*/replicates/replicate-*/{MODEL_FILE}")})
        if runs:
            if len(runs) > 1:
                notes.append(f"{len(runs)} experiment runs in {folder}; explaining the latest, {runs[-1].name} (give its folder to choose).")
            folder = runs[-1]
            replicates = sorted((folder / "replicates").glob(f"replicate-*/{MODEL_FILE}"))
    if replicates:
        if replicate is None:
            chosen = replicates[0]
            if len(replicates) > 1:
                notes.append(f"{len(replicates)} replicates in {folder}; explaining {chosen.parent.name} (choose with --replicate).")
        else:
            matches = [path for path in replicates if int(path.parent.name.split("-")[-1]) == replicate]
            if not matches:
                raise FileNotFoundError(
                    f"{folder} has no replicate {replicate}; found {[path.parent.name for path in replicates]}."
                )
            chosen = matches[0]
        return chosen, notes
    raise FileNotFoundError(
        f"{folder} holds no trained PyKEEN model: expected {folder / MODEL_FILE} (PipelineResult.save_to_directory) "
        f"or {folder}/[<run>/]replicates/replicate-*/{MODEL_FILE} (pykeen experiments run)."
    )


def _configuration(model_file: Path) -> tuple[dict[str, Any] | None, Path | None]:
    """The experiment configuration or metadata that names the dataset, and its file."""
    from pykeen.utils import load_configuration

    results_folder = model_file.parent
    candidates = [results_folder]
    if results_folder.parent.name == "replicates":
        candidates.append(results_folder.parent.parent)
    for folder in candidates:
        for path in sorted(folder.glob(f"{CONFIGURATION_STEM}.*")):
            config = load_configuration(path)
            pipeline = config.get("pipeline", config)
            if "dataset" in pipeline:
                return dict(dataset=pipeline["dataset"], dataset_kwargs=pipeline.get("dataset_kwargs") or {}), path
    metadata = results_folder / "metadata.json"
    if metadata.is_file():
        data = json.loads(metadata.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("dataset"):
            return dict(dataset=data["dataset"], dataset_kwargs=data.get("dataset_kwargs") or {}), metadata
    return None, None


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
        raise ValueError(f"{source} numbers its entities or relations differently from the model's training_triples/.")
    for name in ("entity_names", "entity_descriptions", "entity_images", "relation_texts"):
        if not hasattr(factory, name):
            raise TypeError(f"{source} is not multimodal (its training factory has no {name}).")


def load_trained_model(
    folder: str | Path,
    *,
    dataset: Any = None,
    dataset_kwargs: Mapping[str, Any] | None = None,
    replicate: int | None = None,
    device: str | torch.device = "cpu",
) -> TrainedLinkPredictor:
    """Load ``trained_model.pkl`` and the graph it belongs to (see the module docstring for the order).

    :param folder: a PyKEEN results folder or an experiment output folder
    :param dataset: a dataset name (:func:`pykeen.datasets.get_dataset`) or object; found from the folder if None
    :param dataset_kwargs: keyword arguments for ``get_dataset`` with a name
    :param replicate: which replicate of an experiment folder (default: the first)
    :param device: where the model runs
    :raises FileNotFoundError: when no model or no dataset can be found (the message says what was tried)
    :raises ValueError: when the dataset does not fit the model
    """
    from pykeen.datasets import get_dataset

    from ..data import MultimodalTriplesFactory

    folder = Path(folder)
    model_file, notes = find_model_file(folder, replicate)
    model = torch.load(model_file, map_location=torch.device(device), weights_only=False)
    model.eval()
    facts: dict[str, Any] = {"model": str(model_file)}
    training_folder = model_file.parent / TRAINING_FOLDER
    saved = MultimodalTriplesFactory.from_path_binary(training_folder) if training_folder.is_dir() else None

    source = None
    if dataset is None:
        found, config_path = _configuration(model_file)
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
            f"Cannot tell which dataset {model_file} was trained on: no {CONFIGURATION_STEM}.* (pykeen experiments run), "
            f"no 'dataset' in metadata.json and no {TRAINING_FOLDER}/ next to it. Give it with --dataset NAME."
        )
    _check_same_graph(model, saved, None, str(training_folder))
    known = {"training": saved.mapped_triples}
    training_path = saved.metadata.get("path")
    facts["dataset"] = f"{training_folder}" + (f" (trained on {training_path})" if training_path else "")
    siblings = _sibling_splits(Path(training_path)) if training_path else {}
    for split, path in siblings.items():
        known[split] = _read_labeled_split(path, saved)
    missing = [split for split in SPLIT_NAMES if split not in known]
    if missing:
        notes.append(
            f"No {' / '.join(missing)} triples found next to the training file {training_path}: the rank is filtered "
            "with the triples found only; give --dataset for PyKEEN's full filter."
        )
    return TrainedLinkPredictor(model, saved, known, facts, notes)
