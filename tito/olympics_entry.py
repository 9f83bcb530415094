"""A class-competition entry (`tito olympics submit EVENT`): the student's own tinytorch package, the weights of a
digits MLP and a small manifest, in one zip; nothing else may be in it.

In: an event name, a module-08 checkpoint (or any .npz) of a `Sequential(Linear, ReLU, ..., Linear)` from 64
inputs to 10 classes, the student's `tinytorch/` folder. Out: `<name>-<event>.zip`. `read_entry` checks a zip the
same way again (the instructor's side never trusts that the student's tito packed it), so a hand-made zip with
another file, another layout or arrays that are not plain numbers is refused with one line naming the problem.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import TitoError

EVENTS = ("digits-smallest", "digits-fastest")  # the events an MLP entry can enter (descriptions: tinytorch.core.capstone)
FORMAT = 1
INPUTS, CLASSES = 64, 10  # 8 x 8 digits, ten classes
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
PACKAGE_FILE = re.compile(r"tinytorch/(__init__|core/__init__|core/[a-z_]+)\.py")
MAX_PACKAGE_BYTES = 2 * 2**20     # all package files together
MAX_WEIGHTS_BYTES = 16 * 2**20
MAX_WIDTH = 4096


@dataclass(frozen=True)
class Entry:
    """A checked entry: who, which event, the MLP's widths (64, ..., 10), its arrays and the package's files."""

    name: str
    event: str
    widths: tuple[int, ...]
    weights: dict[str, np.ndarray]   # "0.weight", "0.bias", "2.weight", ...: Sequential's state_dict names
    package: dict[str, bytes]        # "tinytorch/core/layers.py" -> source

    @property
    def parameters(self) -> int:
        return sum(array.size for array in self.weights.values())

    @property
    def size_bytes(self) -> int:
        return sum(array.nbytes for array in self.weights.values())


def mlp_widths(weights: dict[str, np.ndarray], where: str) -> tuple[int, ...]:
    """The widths of the MLP these arrays describe, or a TitoError naming what does not fit."""
    layers = sorted({int(key.split(".")[0]) for key in weights if re.fullmatch(r"\d+\.(weight|bias)", key)})
    expected = {f"{index}.{kind}" for index in layers for kind in ("weight", "bias")}
    if not layers or set(weights) != expected or layers != list(range(0, 2 * len(layers), 2)):
        raise TitoError(f"{where}: the weights must be those of Sequential(Linear, ReLU, ..., Linear), arrays "
                        f"0.weight, 0.bias, 2.weight, ...; got {', '.join(sorted(weights)) or 'none'}", 2)
    widths = [INPUTS]
    for index in layers:
        weight, bias = weights[f"{index}.weight"], weights[f"{index}.bias"]
        if weight.ndim != 2 or weight.shape[0] != widths[-1] or bias.shape != (weight.shape[1],):
            raise TitoError(f"{where}: layer {index} has weight {weight.shape} and bias {bias.shape}, expected "
                            f"({widths[-1]}, n) and (n,)", 2)
        if not 0 < weight.shape[1] <= MAX_WIDTH:
            raise TitoError(f"{where}: layer {index} has {weight.shape[1]} outputs, at most {MAX_WIDTH} are allowed", 2)
        widths.append(weight.shape[1])
    if widths[-1] != CLASSES:
        raise TitoError(f"{where}: the last layer has {widths[-1]} outputs, a digits classifier needs {CLASSES}", 2)
    return tuple(widths)


def _numeric(arrays, where: str) -> dict[str, np.ndarray]:
    checked = {}
    for key, array in arrays.items():
        if array.dtype not in (np.float32, np.float64) or not np.all(np.isfinite(array)):
            raise TitoError(f"{where}: array {key} must hold finite float32 or float64 numbers, got {array.dtype}", 2)
        checked[key] = array
    return checked


def read_weights(data: bytes, where: str) -> dict[str, np.ndarray]:
    """The model's arrays of an .npz (a module-08 checkpoint's `model/...` arrays, or plain state_dict names)."""
    if len(data) > MAX_WEIGHTS_BYTES:
        raise TitoError(f"{where}: {len(data):,} bytes of weights, at most {MAX_WEIGHTS_BYTES:,} are allowed", 2)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as arrays_zip:  # a compressed .npz could unpack to far more
            if sum(info.file_size for info in arrays_zip.infolist()) > MAX_WEIGHTS_BYTES:
                raise TitoError(f"{where}: the weights unpack to more than {MAX_WEIGHTS_BYTES:,} bytes", 2)
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise TitoError(f"{where}: not a NumPy .npz of plain arrays ({str(error).splitlines()[0][:120]})", 2) from None
    if any(key.startswith("model/") for key in arrays):  # save_checkpoint's layout: keep only the model
        arrays = {key[len("model/"):]: array for key, array in arrays.items() if key.startswith("model/")}
    return _numeric(arrays, where)


def package_files(package: Path) -> dict[str, bytes]:
    """The student's package: tinytorch/__init__.py and tinytorch/core/*.py, nothing else."""
    if not (package / "core").is_dir():
        raise TitoError(f"{package} is not a tinytorch package (no core/ folder): pass --package", 2)
    files = {f"tinytorch/{path.relative_to(package).as_posix()}": path.read_bytes()
             for path in [package / "__init__.py", *sorted((package / "core").glob("*.py"))] if path.is_file()}
    _check_package(files, str(package))
    return files


def _check_package(files: dict[str, bytes], where: str) -> None:
    strange = [name for name in files if not PACKAGE_FILE.fullmatch(name)]
    if strange:
        raise TitoError(f"{where}: an entry holds only tinytorch/__init__.py and tinytorch/core/*.py, not {strange[0]}", 2)
    for needed in ("tinytorch/core/layers.py", "tinytorch/core/activations.py", "tinytorch/core/tensor.py"):
        if needed not in files:
            raise TitoError(f"{where}: the package lacks {needed} (complete modules 01-03 first)", 2)
    if sum(len(data) for data in files.values()) > MAX_PACKAGE_BYTES:
        raise TitoError(f"{where}: the package files exceed {MAX_PACKAGE_BYTES:,} bytes", 2)


def _check_name_and_event(name: str, event: str, where: str) -> None:
    if event not in EVENTS:
        raise TitoError(f"{where}: no event {event!r}; the events are {', '.join(EVENTS)}", 2)
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise TitoError(f"{where}: an entry's name is 1-40 letters, digits, '.', '_' or '-', got {name!r}", 2)


def pack_entry(event: str, name: str, weights_path: Path, package: Path, out_folder: Path) -> Path:
    """Check and write the entry zip; returns its path."""
    _check_name_and_event(name, event, "the entry")
    if not weights_path.is_file():
        raise TitoError(f"no weights file {weights_path}: save your model with save_checkpoint(path, model)", 2)
    weights = read_weights(weights_path.read_bytes(), str(weights_path))
    widths = mlp_widths(weights, str(weights_path))
    files = package_files(package)
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    manifest = {"format": FORMAT, "event": event, "name": name, "widths": list(widths)}
    out_folder.mkdir(parents=True, exist_ok=True)
    target = out_folder / f"{name}-{event}.zip"
    temporary = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=1))
        archive.writestr("weights.npz", buffer.getvalue())
        for relative, data in files.items():
            archive.writestr(relative, data)
    temporary.replace(target)
    return target


def read_entry(path: Path) -> Entry:
    """The entry in the zip at `path`, checked as on packing; a TitoError names the first problem."""
    where = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            if sum(info.file_size for info in members) > MAX_PACKAGE_BYTES + MAX_WEIGHTS_BYTES + 2**16:
                raise TitoError(f"{where}: the entry unpacks to more than its allowed size", 2)
            contents = {info.filename: archive.read(info) for info in members}
    except (zipfile.BadZipFile, OSError) as error:
        raise TitoError(f"{where}: not a zip file ({error})", 2) from None
    strange = [name for name in contents if name not in ("manifest.json", "weights.npz") and not PACKAGE_FILE.fullmatch(name)]
    if strange:
        raise TitoError(f"{where}: an entry holds only manifest.json, weights.npz and tinytorch/*.py, not {strange[0]}", 2)
    if "manifest.json" not in contents or "weights.npz" not in contents:
        raise TitoError(f"{where}: an entry needs manifest.json and weights.npz", 2)
    try:
        manifest = json.loads(contents.pop("manifest.json"))
    except (ValueError, UnicodeDecodeError):
        raise TitoError(f"{where}: manifest.json is not JSON", 2) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TitoError(f"{where}: manifest.json is not an entry manifest of format {FORMAT}", 2)
    _check_name_and_event(manifest.get("name"), manifest.get("event"), where)
    weights = read_weights(contents.pop("weights.npz"), where)
    widths = mlp_widths(weights, where)
    if list(widths) != manifest.get("widths"):
        raise TitoError(f"{where}: the manifest's widths {manifest.get('widths')} are not the weights' {list(widths)}", 2)
    _check_package(contents, where)
    return Entry(manifest["name"], manifest["event"], widths, weights, contents)
