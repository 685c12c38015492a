"""Input frames: the built-in image set, a user's image folder, and preprocessing.

The built-in set is drawn with pillow at run time (nothing is downloaded or shipped): eight
deterministic scenes of gradients and shapes. A user folder must hold only images (hidden
files are skipped); anything pillow cannot read is an error naming the file.

Every image becomes RGB, is resized on its short side and centre-cropped to the model's
input, then normalised the way the model was trained: a :class:`Preprocessing`, declared by
the model's spec (``ModelSpec.preprocessing``; ImageNet mean and std unless it says otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from .errors import SplitnetError

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
BUILTIN_COUNT = 8


@dataclass(frozen=True)
class Preprocessing:
    """Pixel normalisation a model was trained with: ``(pixel / divisor - mean) / std`` per RGB channel.

    ``pixel`` is 0..255. ImageNet models (the default) take ``divisor`` 255 and the ImageNet
    mean and std; EfficientNet-Lite takes ``(pixel - 127) / 128`` (divisor 1, mean 127, std 128).
    ``crop``: resize the short side and centre-crop (the default), or resize the whole image to
    the input size (how EfficientNet-Lite's published accuracy was measured).
    """

    name: str
    divisor: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop: bool = True

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W, 3) pixels 0..255 -> (1, 3, H, W) float32, normalised."""
        return self.apply(np.asarray(pixels).transpose(2, 0, 1)[None])

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) pixels 0..255 (uint8) -> float32, normalised: the same float32 ops, in the
        same order, as the front compiled into parts that take uint8 frames (:mod:`wire`)."""
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, 3, 1, 1)
        array = (np.asarray(pixels, dtype=np.float32) / np.float32(self.divisor) - mean) / std
        return np.ascontiguousarray(array, dtype=np.float32)

    def describe(self) -> str:
        return f"{self.name}: (x / {self.divisor:g} - {list(self.mean)}) / {list(self.std)}"


IMAGENET = Preprocessing("ImageNet mean/std", 255.0, tuple(MEAN.tolist()), tuple(STD.tolist()))


@dataclass(frozen=True)
class Frame:
    name: str
    tensor: np.ndarray  # (1, 3, H, W) float32, normalised
    pixels: np.ndarray | None = None  # (1, 3, H, W) uint8, what ``tensor`` was normalised from

    def on_wire(self, wire: str) -> np.ndarray:
        """What is sent to the boards: the uint8 pixels, or the float32 tensor."""
        if wire == "uint8" and self.pixels is not None:
            return self.pixels
        return self.tensor


def builtin_images(count: int = BUILTIN_COUNT, size: int = 256) -> list[tuple[str, Image.Image]]:
    rng = np.random.RandomState(1234)
    images = []
    for i in range(count):
        top, bottom = rng.randint(0, 256, size=3), rng.randint(0, 256, size=3)
        ramp = np.linspace(0.0, 1.0, size)[:, None, None]
        pixels = (top * (1 - ramp) + bottom * ramp).repeat(size, axis=1).astype(np.uint8)
        image = Image.fromarray(pixels, "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(3 + i % 4):
            x0, y0 = rng.randint(0, size * 3 // 4, size=2)
            w, h = rng.randint(size // 8, size // 2, size=2)
            color = tuple(int(c) for c in rng.randint(0, 256, size=3))
            shape = (draw.ellipse, draw.rectangle)[rng.randint(2)]
            shape([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=color)
        images.append((f"builtin-{i}", image))
    return images


def load_image_dir(directory: Path) -> list[tuple[str, Image.Image]]:
    if not directory.exists():
        raise SplitnetError(f"image directory {directory} does not exist", "pass --images DIR with image files")
    if not directory.is_dir():
        raise SplitnetError(f"{directory} is not a directory", "pass --images DIR (a folder of image files)")
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SplitnetError(f"image directory {directory} has no files", "put .jpg or .png images in it")
    images = []
    for path in files:
        try:
            with Image.open(path) as image:
                image.load()
                images.append((path.name, image.copy()))
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise SplitnetError(
                f"{path} is not a readable image ({type(exc).__name__})",
                f"remove it from {directory} or convert it to JPEG/PNG",
            ) from None
    return images


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with 8 bits per channel, scaling deep images instead of clipping them.

    PIL's ``convert("RGB")`` clips 16-bit and 32-bit integer pixels at 255 and truncates
    floats, so those are rescaled to 0..255 first: by their bit depth for integers (I;16 is
    0..65535), and by their own range for floats (a 0..1 float TIFF stays a picture).
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            low, high = 0.0, 65535.0
        elif image.mode == "I":
            low, high = 0.0, float(max(values.max(), 255.0))
        else:
            low, high = float(values.min()), float(values.max())
        scaled = np.clip((values - low) / max(high - low, 1e-12) * 255.0, 0, 255).round().astype(np.uint8)
        image = Image.fromarray(scaled, mode="L")
    return image.convert("RGB")  # palette, greyscale, RGBA, CMYK: all become RGB


def preprocess(image: Image.Image, input_shape: tuple[int, ...], preprocessing: Preprocessing = IMAGENET) -> np.ndarray:
    """RGB, resize the short side (x256/224 for ImageNet-size inputs), centre crop (or resize whole), normalise."""
    return preprocessing.apply(pixels_of(image, input_shape, preprocessing.crop))


def pixels_of(image: Image.Image, input_shape: tuple[int, ...], crop: bool = True) -> np.ndarray:
    """RGB, resize the short side (x256/224 for ImageNet-size inputs), centre crop (or resize whole): uint8 NCHW."""
    _, channels, height, width = input_shape
    if channels != 3:
        raise SplitnetError(f"the model expects {channels} channels, images give 3", "use an RGB model")
    image = _to_rgb(image)
    if not crop:
        image = image.resize((width, height), Image.BILINEAR)
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)[None])
    scale = 256 / 224 if min(height, width) >= 128 else 1.0
    short = round(max(height, width) * scale)
    w, h = image.size
    ratio = short / min(w, h)
    image = image.resize((max(width, round(w * ratio)), max(height, round(h * ratio))), Image.BILINEAR)
    w, h = image.size
    left, top = (w - width) // 2, (h - height) // 2
    image = image.crop((left, top, left + width, top + height))
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)[None])


def load_frames(
    directory: Path | None, input_shape: tuple[int, ...], preprocessing: Preprocessing = IMAGENET
) -> tuple[list[Frame], str]:
    """Frames ready for the model (normalised by ``preprocessing``), and where they came from."""
    if directory is None:
        images, source = builtin_images(), f"built-in set ({BUILTIN_COUNT} pillow-drawn images)"
    else:
        images = load_image_dir(directory)
        source = f"{directory} ({len(images)} images)"
    frames = []
    for name, image in images:
        pixels = pixels_of(image, input_shape, preprocessing.crop)
        frames.append(Frame(name, preprocessing.apply(pixels), pixels))
    return frames, source
