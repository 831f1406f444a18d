"""Multimodal PyKEEN datasets: WN18IMG, FB15k237IMG, the bundled WN18IMGMini and the synthetic ShapesKG.

This module is PyKEEN's ``pykeen.datasets`` entry point: PyKEEN loads it while
``pykeen/datasets/__init__.py`` is still running, so its imports must not take names from
``pykeen.datasets`` (``from pykeen.datasets import X``) nor import ``pykeen.models``; it uses only
``pykeen.datasets.base`` and the triples factory (see also ``pykeen_mkgformer/data/__init__.py``).

Where the benchmark files are found (first match):

1. the ``path=`` argument, 2. the folder named by ``$PYKEEN_MKGFORMER_DATA``,
3. ``$PYSTOW_HOME/pykeen/datasets/mkgformer`` (PyKEEN's data home, default ``~/.data``).

In that folder, two layouts are understood (plain or ``.gz`` files):

- this package's: ``wn18/{train,valid,test}.tsv``, ``wn18/entity2text.tsv``, ``wn18/relation2text.tsv``,
  ``wn18_images/n<offset>/*.jpg`` (FB15k-237: ``fb15k237/`` and ``fb15k237_images/m.<mid>/``);
- MKGformer's release (its ``MKG/dataset`` folder): ``WN18/{train,dev,test}.tsv``, ``WN18/entity2text.txt``,
  ``WN18/entity2textlong.txt`` (optional), ``WN18/relation2text.txt``, ``wn18-images/n<offset>/``
  (FB15k-237: ``FB15k-237/`` and ``FB15k-images/m.<mid>/``); ``path=`` may also name ``WN18/`` itself.
"""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import torch
from pykeen.datasets.base import Dataset, EagerDataset, LazyDataset

from .multimodal import MultimodalTriplesFactory
from .readers import MultimodalFiles, load_multimodal_splits
from .trust import UnsafeFileError
from .shapes import FORMAT_VERSION as SHAPES_FORMAT_VERSION
from .shapes import generate_shapes_kg

__all__ = [
    "ENV_DATA",
    "data_root",
    "MultimodalDataset",
    "MissingDataError",
    "WN18IMG",
    "FB15k237IMG",
    "WN18IMGMini",
    "ShapesKG",
]

logger = logging.getLogger(__name__)

#: the environment variable naming the benchmark data folder
ENV_DATA = "PYKEEN_MKGFORMER_DATA"

RESOURCES = pathlib.Path(__file__).resolve().parent.joinpath("resources")

HOW_TO_GET = (
    "Get the files from MKGformer's data release (https://github.com/zjunlp/MKGformer, folder MKG/dataset, "
    "and its image archives) or any copy in this package's layout, then pass path=... or set "
    f"${ENV_DATA} to the folder (see the 'Datasets' section of README.rst)."
)


class MissingDataError(FileNotFoundError):
    """Benchmark files were not found; the message lists every expected file and where."""


def data_root(path: str | pathlib.Path | None = None) -> pathlib.Path:
    """The benchmark data folder: ``path``, else ``$PYKEEN_MKGFORMER_DATA``, else PyKEEN's pystow home."""
    if path is not None:
        return pathlib.Path(path).expanduser().resolve()
    if os.environ.get(ENV_DATA):
        return pathlib.Path(os.environ[ENV_DATA]).expanduser().resolve()
    import pystow

    return pystow.join("pykeen", "datasets", "mkgformer")


def _find(folder: pathlib.Path, *names: str) -> pathlib.Path | None:
    """The first of ``names`` (each also tried with ``.gz``) that exists in ``folder``.

    Anything of that name counts (a directory, a dangling symlink...): reading it then fails with
    an error that says what it is, rather than calling the file missing.
    """
    for name in names:
        for candidate in (folder.joinpath(name), folder.joinpath(name + ".gz")):
            if os.path.lexists(candidate):
                return candidate
    return None


def _locate(
    root: pathlib.Path,
    layouts: Iterable[tuple[str, pathlib.Path, dict[str, tuple[str, ...]], pathlib.Path | None]],
    **files_kwargs: Any,
) -> MultimodalFiles:
    """Return the files of the first complete layout, or raise listing what each layout expects.

    Each layout is ``(description, folder, {role: candidate names}, image root or None)``; a missing
    image folder is not an error (a warning: the entities have no images).
    """
    report = []
    for description, folder, roles, image_root in layouts:
        found = {role: _find(folder, *names) for role, names in roles.items()}
        required = {role: path for role, path in found.items() if role != "entity_long_texts"}
        if all(path is not None for path in required.values()):
            if image_root is not None and not image_root.is_dir():
                logger.warning("no image folder at %s: entities have no images", image_root)
                image_root = None
            return MultimodalFiles(**found, image_root=image_root, **files_kwargs)
        lines = [f"  {description}:"]
        for role, names in roles.items():
            status = "found" if found[role] else ("optional, missing" if role == "entity_long_texts" else "MISSING")
            lines.append(f"    {folder.joinpath(names[0])}[.gz]  ({status})")
        if image_root is not None:
            status = "found" if image_root.is_dir() else "missing"
            lines.append(f"    {image_root}/<entity folder>/*.jpg  (images, optional; {status})")
        report.append("\n".join(lines))
    raise MissingDataError(
        f"benchmark files not found under {root}; expected one of these layouts:\n"
        + "\n".join(report)
        + "\n"
        + HOW_TO_GET
    )


def _standard_layouts(
    root: pathlib.Path, ours: str, theirs: str, their_images: str
) -> list[tuple[str, pathlib.Path, dict[str, tuple[str, ...]], pathlib.Path]]:
    """This package's layout and MKGformer's release layout, rooted at ``root`` (or at the split folder)."""
    our_roles = dict(
        training=("train.tsv",),
        validation=("valid.tsv",),
        testing=("test.tsv",),
        entity_texts=("entity2text.tsv",),
        relation_texts=("relation2text.tsv",),
        entity_long_texts=("entity2textlong.tsv",),
    )
    their_roles = dict(
        training=("train.tsv",),
        validation=("dev.tsv",),
        testing=("test.tsv",),
        entity_texts=("entity2text.txt",),
        relation_texts=("relation2text.txt",),
        entity_long_texts=("entity2textlong.txt",),
    )
    layouts = [
        ("this package's layout", root.joinpath(ours), our_roles, root.joinpath(f"{ours}_images")),
        ("MKGformer's release layout", root.joinpath(theirs), their_roles, root.joinpath(their_images)),
    ]
    if _find(root, "dev.tsv"):  # path= names the split folder itself
        images = root.joinpath(their_images)
        if not images.is_dir():
            images = root.parent.joinpath(their_images)
        layouts.insert(0, ("MKGformer's split folder", root, their_roles, images))
    return layouts


def _wordnet_name(text: str) -> str:
    """WN18 texts are ``lemma, gloss``: the lemma."""
    return text.split(", ", 1)[0]


def _wordnet_image_folder(label: str) -> str:
    """ImageNet's folder for a WordNet noun offset: ``n`` + offset."""
    return f"n{label}"


def _freebase_image_folder(label: str) -> str:
    """MKGformer's folder for a Freebase MID: ``/m/0abc`` -> ``m.0abc``."""
    return label.lstrip("/").replace("/", ".")


def _shapes_name(text: str) -> str:
    """``object number 17`` -> ``object 17``."""
    return text.replace("object number", "object")


class MultimodalDataset(LazyDataset):
    """A lazily loaded dataset whose three factories are :class:`MultimodalTriplesFactory` sharing ids.

    PyKEEN's ``get_dataset`` stores datasets in a binary cache keyed by their keyword arguments only;
    :meth:`from_directory_binary` rebuilds that copy when the source files changed (another data
    folder, e.g. a new ``$PYKEEN_MKGFORMER_DATA``) or when an image it names is gone.
    """

    triples_factory_cls: ClassVar[type[MultimodalTriplesFactory]] = MultimodalTriplesFactory

    def __init__(self, *, create_inverse_triples: bool = False, **kwargs: Any) -> None:
        """Find the files (raising :class:`MissingDataError` when absent); loading happens on first use."""
        self._create_inverse_triples = create_inverse_triples
        self.files = self._files(**kwargs)
        self.metadata = dict(
            dataset_kwargs=dict(kwargs, create_inverse_triples=create_inverse_triples),
            source=self.files.fingerprint(),
        )

    def _files(self, **kwargs: Any) -> MultimodalFiles:
        raise NotImplementedError

    def _load(self) -> None:
        self._training, self._validation, self._testing = load_multimodal_splits(
            self.files, create_inverse_triples=self._create_inverse_triples, entities=getattr(self, "_entities", "triples")
        )

    def _load_validation(self) -> None:
        if not self._loaded:
            self._load()

    def __repr__(self) -> str:  # noqa: D105
        return f"{self.__class__.__name__}(training={self.files.training})"

    def restrict(self, *args: Any, **kwargs: Any) -> Dataset:
        """PyKEEN's :meth:`pykeen.datasets.Dataset.restrict`, keeping the multimodal attributes."""
        restricted = super().restrict(*args, **kwargs)
        if restricted is self:
            return self
        source = self.training
        return EagerDataset(
            training=MultimodalTriplesFactory.from_triples_factory(restricted.training, attributes_from=source),
            testing=MultimodalTriplesFactory.from_triples_factory(restricted.testing, attributes_from=source),
            validation=MultimodalTriplesFactory.from_triples_factory(restricted.validation, attributes_from=source),
            metadata=restricted.metadata,
        )

    @classmethod
    def from_directory_binary(cls, path: str | pathlib.Path) -> Dataset:
        """Load PyKEEN's binary copy (JSON, TSV and a ``weights_only`` metadata file: no pickle), or rebuild it
        when its source changed or an image is gone."""
        path = pathlib.Path(path)
        metadata = _read_cache_metadata(path.joinpath(cls.metadata_file_name))
        kwargs = metadata.get("dataset_kwargs")
        if kwargs is None:
            raise FileNotFoundError(
                f"{path} (PyKEEN's cached copy) holds no readable {cls.metadata_file_name} of a {cls.__name__}; "
                "delete that folder to have it rebuilt from the data files."
            )
        fresh = cls(**kwargs)
        stale = fresh.metadata["source"] != metadata.get("source")
        if not stale:
            try:
                loaded = _read_binary_splits(path, metadata)
            except UnsafeFileError:  # written by an older version (pickled base.pth): rebuilt, never unpickled
                loaded = None
            # an image entry that is gone (an entry the decoder refuses, e.g. a directory named
            # x.jpg, is still listed, so only its disappearance makes the copy stale)
            stale = loaded is None or not all(os.path.lexists(p) for paths in loaded.training.entity_images for p in paths)
            if not stale:
                return loaded
        logger.info("the cached copy at %s is out of date; rebuilding it", path)
        fresh.to_directory_binary(path)
        return fresh


def _read_cache_metadata(path: pathlib.Path) -> dict[str, Any]:
    """PyKEEN's dataset metadata file (``torch.save`` of a dict), read with ``weights_only=True``
    (paths allowed): a file that holds anything else is not read, and the cache is rebuilt."""
    import pickle

    if not path.is_file():
        return {}
    try:
        with torch.serialization.safe_globals([pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath]):
            metadata = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        logger.warning("not reading %s (%s); the cached copy is rebuilt", path, str(error).splitlines()[0] if str(error) else error)
        return {}
    return dict(metadata) if isinstance(metadata, Mapping) else {}


def _read_binary_splits(path: pathlib.Path, metadata: Mapping[str, Any]) -> Dataset:
    """The three factories of PyKEEN's binary copy, read from JSON and TSV (no pickle)."""
    splits = {key: MultimodalTriplesFactory.from_path_binary(path.joinpath(key)) for key in ("training", "testing", "validation")}
    return EagerDataset(**splits, metadata=dict(metadata))


class _DataFolderDataset(MultimodalDataset):
    """A dataset read from a data folder in this package's or MKGformer's layout (see :func:`_standard_layouts`)."""

    #: folder names: ours (e.g. ``wn18``), MKGformer's (``WN18``), MKGformer's image folder (``wn18-images``)
    ours: ClassVar[str]
    theirs: ClassVar[str]
    their_images: ClassVar[str]

    def __init__(
        self, path: str | pathlib.Path | None = None, *, create_inverse_triples: bool = False, entities: str = "triples"
    ) -> None:
        """Find the files.

        :param path: the data folder (default: ``$PYKEEN_MKGFORMER_DATA``, else PyKEEN's data home)
        :param create_inverse_triples: PyKEEN's flag
        :param entities: ``"triples"`` (the entities of the triples) or ``"entity2text"`` (every entity with a
            text, as the official code ranks them)
        """
        if entities not in ("triples", "entity2text"):
            raise ValueError(f"entities must be 'triples' or 'entity2text', got {entities!r}.")
        self._entities = entities
        kwargs: dict[str, Any] = {"entities": entities} if entities != "triples" else {}
        super().__init__(path=None if path is None else str(path), create_inverse_triples=create_inverse_triples, **kwargs)

    #: an entity label's image folder name
    _image_folder: ClassVar[Callable[[str], str]]
    #: an entity's short name from its text (default: the text itself)
    _name_from_text: ClassVar[Callable[[str], str]] = staticmethod(str)

    def _files(self, path: str | None, entities: str = "triples") -> MultimodalFiles:
        root = data_root(path)
        return _locate(
            root,
            _standard_layouts(root, ours=self.ours, theirs=self.theirs, their_images=self.their_images),
            image_folder=self._image_folder,
            name_from_text=self._name_from_text,
        )


class WN18IMG(_DataFolderDataset):
    """WN18 with ImageNet images per entity (MKGformer's WN18-IMG): 40,943 entities, 18 relations.

    Texts are MKGformer's ``entity2text`` (``lemma, gloss``; the name is the lemma); images are
    read from ``wn18_images/n<offset>/`` (or ``wn18-images/``).
    """

    ours, theirs, their_images = "wn18", "WN18", "wn18-images"
    _image_folder = staticmethod(_wordnet_image_folder)
    _name_from_text = staticmethod(_wordnet_name)


class FB15k237IMG(_DataFolderDataset):
    """FB15k-237 with entity names/descriptions and images (MKGformer's FB15k-237-IMG): 237 relations.

    The description is ``entity2textlong`` when present, else ``entity2text`` (as MKGformer does);
    the name is ``entity2text``. Images are read from ``fb15k237_images/m.<mid>/`` (or ``FB15k-images/``).
    """

    ours, theirs, their_images = "fb15k237", "FB15k-237", "FB15k-images"
    _image_folder = staticmethod(_freebase_image_folder)


class WN18IMGMini(MultimodalDataset):
    """A small connected WN18 subgraph around the entities that have images, bundled with the package.

    Triples and WordNet texts ship inside the package (``data/resources/wn18imgmini``; rebuilt by
    ``benchmarks/build_wn18img_mini.py``); no images do (ImageNet's licence): they are read from
    ``image_root``, by default ``$PYKEEN_MKGFORMER_DATA/wn18_images`` when that variable is set.
    Without them the entities have no images and models run text-only.
    """

    def __init__(self, image_root: str | pathlib.Path | None = None, *, create_inverse_triples: bool = False) -> None:
        """Find the bundled files.

        :param image_root: the folder holding ``n<offset>/`` image folders
        :param create_inverse_triples: PyKEEN's flag
        """
        super().__init__(
            image_root=None if image_root is None else str(image_root), create_inverse_triples=create_inverse_triples
        )

    def _files(self, image_root: str | None) -> MultimodalFiles:
        if image_root is None and os.environ.get(ENV_DATA):
            candidates = [data_root().joinpath(name) for name in ("wn18_images", "wn18-images")]
            image_root = next((str(folder) for folder in candidates if folder.is_dir()), None)
            if image_root is None:
                logger.warning("no image folder at %s: entities have no images", " or ".join(map(str, candidates)))
        folder = RESOURCES.joinpath("wn18imgmini")
        return _locate(
            folder,
            [
                (
                    "bundled",
                    folder,
                    dict(
                        training=("train.tsv",),
                        validation=("valid.tsv",),
                        testing=("test.tsv",),
                        entity_texts=("entity2text.tsv",),
                        relation_texts=("relation2text.tsv",),
                        entity_long_texts=("entity2textlong.tsv",),
                    ),
                    pathlib.Path(image_root).expanduser().resolve() if image_root else None,
                )
            ],
            image_folder=_wordnet_image_folder,
            name_from_text=_wordnet_name,
        )


class ShapesKG(MultimodalDataset):
    """A synthetic multimodal KG whose test answers can only be read from images (see :mod:`.shapes`).

    Rendered deterministically with Pillow into ``cache_root`` (default
    ``$PYSTOW_HOME/pykeen/datasets/shapeskg``), one sub-folder per setting.
    """

    def __init__(
        self,
        *,
        num_entities: int = 48,
        image_size: int = 32,
        images_per_entity: int = 1,
        held_out: float = 0.25,
        seed: int = 0,
        cache_root: str | pathlib.Path | None = None,
        create_inverse_triples: bool = False,
    ) -> None:
        """Generate (once) and find the files.

        :param num_entities: number of objects (48 = every colour x shape x size once)
        :param image_size: image side in px
        :param images_per_entity: renders per object (shifted and shaded copies after the first)
        :param held_out: fraction of entities that occur only in validation / testing
        :param seed: the seed of the attributes, the split and the renders
        :param cache_root: where the generated files go
        :param create_inverse_triples: PyKEEN's flag
        """
        super().__init__(
            num_entities=num_entities,
            image_size=image_size,
            images_per_entity=images_per_entity,
            held_out=held_out,
            seed=seed,
            cache_root=None if cache_root is None else str(cache_root),
            create_inverse_triples=create_inverse_triples,
        )

    def _files(self, cache_root: str | None, **settings: Any) -> MultimodalFiles:
        if cache_root is None:
            import pystow

            cache_root = str(pystow.join("pykeen", "datasets", "shapeskg"))
        name = "-".join(f"{key}={value}" for key, value in sorted(settings.items()))
        folder = generate_shapes_kg(pathlib.Path(cache_root).joinpath(f"v{SHAPES_FORMAT_VERSION}-{name}"), **settings)
        return MultimodalFiles(
            training=folder.joinpath("train.tsv"),
            validation=folder.joinpath("valid.tsv"),
            testing=folder.joinpath("test.tsv"),
            entity_texts=folder.joinpath("entity2text.tsv"),
            relation_texts=folder.joinpath("relation2text.tsv"),
            image_root=folder.joinpath("images"),
            name_from_text=_shapes_name,
        )
