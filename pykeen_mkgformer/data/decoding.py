r"""The package's one image decoder: any image file to an RGB :class:`PIL.Image.Image`, or an :class:`ImageError`.

Link prediction (:class:`~pykeen_mkgformer.data.images.PixelCache`) and relation extraction / NER
(:class:`~pykeen_mkgformer.tasks.images.InstanceImages`) both decode with :func:`load_rgb`, so an
image gives the same pixels in every task.

What :func:`load_rgb` does, in order:

1. **Opens only regular files** (:func:`~pykeen_mkgformer.data.files.open_regular`): a directory
   named ``*.jpg``, a symlink loop, a dangling symlink, a symlink to ``/dev/zero`` or to a FIFO, an
   unreadable file are refused with the reason; files over :data:`MAX_IMAGE_BYTES` and empty files too.
2. **Identifies the format** among :data:`IMAGE_FORMATS` (Pillow's raster formats that decode in
   process; EPS, which Pillow hands to Ghostscript, is not one of them). Anything else (SVG, HEIC
   without a plugin, text) is "not a readable image".
3. **Refuses decompression bombs before decoding a pixel**: more than
   :data:`PIL.Image.MAX_IMAGE_PIXELS` pixels in the header (Pillow only warns up to twice that; here
   it is an error), or an aspect ratio over :data:`MAX_ASPECT_RATIO` (a 1 x 80,000,000 image is
   cheap to decode, but resizing its short side to 224 px would need gigabytes).
4. **Decodes the first frame** (animated GIF / PNG / WebP, multi-page TIFF).
5. **Applies the EXIF orientation** (tags 2-8: mirrored and rotated phone photos come out upright).
6. **Converts every mode to RGB**:

   - alpha (``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La``) and palette / ``L`` / ``RGB`` images with a
     transparency key are composed on white, :math:`c = \alpha\,c_{image} + (1 - \alpha)\,255`;
   - 16-bit greys (``I;16``, ``I;16L``, ``I;16B``, ``I;16N``), and 32-bit integer greys (``I``)
     whose values lie in ``[0, 65535]``, are scaled :math:`v_8 = \lfloor (255 v_{16} + 32767) / 65535 \rfloor`
     (round to nearest), so 16-bit white stays white instead of saturating;
   - other ``I`` and float (``F``) greys: values in ``[0, 1]`` are multiplied by 255, values in
     ``[0, 255]`` kept, anything else min-max scaled to ``[0, 255]`` (NaN and infinities count as 0);
   - ``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``RGBX``: Pillow's conversion.

Any other failure of Pillow on a hostile file (it raises ``OSError``, ``SyntaxError``,
``ValueError``, ``struct.error``, ``IndexError``, ``EOFError``... depending on the plugin) becomes
an :class:`ImageError` naming the file; callers skip the file, warn once and count it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .files import open_regular

__all__ = [
    "load_rgb",
    "to_rgb",
    "file_digest",
    "ImageError",
    "IMAGE_FORMATS",
    "MAX_IMAGE_BYTES",
    "MAX_ASPECT_RATIO",
]

logger = logging.getLogger(__name__)

#: Pillow formats that are decoded (raster formats decoded in process; no EPS / Ghostscript)
IMAGE_FORMATS: tuple[str, ...] = (
    "JPEG",
    "MPO",  # JPEG multi-picture (many phone cameras)
    "PNG",
    "GIF",
    "BMP",
    "DIB",
    "WEBP",
    "TIFF",
    "ICO",
    "PPM",
    "TGA",
    "PCX",
    "SGI",
    "JPEG2000",
    "QOI",
    "AVIF",
)

#: image files larger than this (bytes) are refused
MAX_IMAGE_BYTES = 256 * 2**20

#: images whose long side exceeds this many times their short side are refused
MAX_ASPECT_RATIO = 100

_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}


@functools.cache
def _available_formats() -> tuple[str, ...]:
    """The formats of :data:`IMAGE_FORMATS` this Pillow build can open (plugins loaded)."""
    Image.init()
    return tuple(name for name in IMAGE_FORMATS if name in Image.OPEN)


def _grey_to_uint8(image: Image.Image) -> np.ndarray:
    """16-bit, 32-bit integer and float greys as ``uint8`` (see the module docstring)."""
    array = np.asarray(image)
    if array.dtype.kind in "iu":
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if image.mode in _SIXTEEN_BIT or (0 <= low and high <= 65535):
            return ((array.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
        values = array.astype(np.float32)
    else:
        values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if 0.0 <= low and high <= 1.0:
            return np.rint(values * 255.0).astype(np.uint8)
        if 0.0 <= low and high <= 255.0:
            return np.rint(values).astype(np.uint8)
    # anything else: min-max scaled
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    return np.rint(scaled).astype(np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a decoded image of any Pillow mode to RGB (see the module docstring).

    :raises ValueError: for a mode Pillow cannot convert to RGB
    """
    mode = image.mode
    if mode in _SIXTEEN_BIT or mode in {"I", "F"}:
        return Image.fromarray(_grey_to_uint8(image), mode="L").convert("RGB")
    if mode in _ALPHA or "transparency" in image.info:
        if mode == "La":  # premultiplied grey + alpha: Pillow goes through LA
            image = image.convert("LA")
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _upright(path: str, image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block leaves the image as stored (and says so)."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception as error:  # noqa: BLE001  malformed EXIF can raise almost anything
        logger.warning("%s: EXIF orientation ignored (unreadable EXIF data: %s)", path, error)
        return image


def _check_geometry(path: str, image: Image.Image) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(path, f"empty image ({width} x {height} pixels)")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageError(
            path, f"extreme aspect ratio ({width} x {height} pixels; at most {MAX_ASPECT_RATIO}:1 is decoded)"
        )


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode an image file (its first frame, upright) to RGB.

    :raises ImageError: naming the file and the reason: not a regular file (missing, a directory,
        a symlink loop, a FIFO...), empty, too large, not an image, an unsupported format, corrupt or
        truncated, a decompression bomb (over :data:`PIL.Image.MAX_IMAGE_PIXELS`), an extreme
        aspect ratio, an unconvertible mode
    """
    path = os.fspath(path)
    with open_regular(path, error=ImageError) as file:
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            raise ImageError(path, "empty file")
        if size > MAX_IMAGE_BYTES:
            raise ImageError(path, f"file too large ({size:,} bytes; the limit is {MAX_IMAGE_BYTES:,})")
        try:
            with warnings.catch_warnings():
                # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(file, formats=_available_formats()) as image:
                    _check_geometry(path, image)
                    image.load()  # the first frame
                    return to_rgb(_upright(path, image))
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageError(path, f"decompression bomb refused ({error})") from error
        except UnidentifiedImageError as error:
            raise ImageError(path, "not a readable image (unknown or unsupported format)") from error
        except MemoryError as error:
            raise ImageError(path, "too large to decode in memory") from error
        except Exception as error:  # noqa: BLE001  Pillow's plugins raise many types on hostile input
            raise ImageError(path, f"corrupt or truncated image ({type(error).__name__}: {error})") from error


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a regular file's bytes, or ``unusable:<reason>`` when it cannot be read (never blocks)."""
    digest = hashlib.sha256()
    try:
        with open_regular(path, error=ImageError) as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_IMAGE_BYTES:
                return f"unusable:file too large ({size} bytes)"
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    except ImageError as error:
        return f"unusable:{error.reason}"
    except OSError as error:
        return f"unusable:read error ({error.strerror or error})"
    return digest.hexdigest()
