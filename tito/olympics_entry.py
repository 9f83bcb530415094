"""A class-competition entry (`tito olympics submit EVENT`): the student's own tinytorch package, the weights of a
digits MLP or a character GPT, and a small manifest, in one zip; nothing else may be in it.

In: an event name, the weights (digits: a module-08 checkpoint, or any .npz, of a `Sequential(Linear, ReLU, ...,
Linear)` from 64 inputs to 10 classes; gpt-bpc: the checkpoint of `tito milestone gpt`, whose shape and characters
go into the manifest), the student's `tinytorch/` folder. Out: `<name>-<event>.zip`. `read_entry` checks a zip the
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

from .checkpoints import checkpoint_description
from .errors import TitoError

DIGITS_EVENTS = ("digits-smallest", "digits-fastest")  # a digits MLP (the events' rules: tinytorch.core.capstone)
GPT_EVENT = "gpt-bpc"                                  # a character GPT of `tito milestone gpt`
EVENTS = (*DIGITS_EVENTS, GPT_EVENT)
GPT_BOUNDS = {"context": 4096, "width": 2048, "heads": 64, "layers": 32}  # what a manifest may ask tito to build
FORMAT = 1
INPUTS, CLASSES = 64, 10  # 8 x 8 digits, ten classes
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
PACKAGE_FILE = re.compile(r"tinytorch/(__init__|core/__init__|core/[a-z_]+)\.py")
MAX_PACKAGE_BYTES = 2 * 2**20     # all package files together
MAX_WEIGHTS_BYTES = 16 * 2**20
MAX_WIDTH = 4096


@dataclass(frozen=True)
class Entry:
    """A checked entry: who, which event, the MLP's widths (64, ..., 10) or the GPT's shape, its arrays and the
    package's files."""

    name: str
    event: str
    widths: tuple[int, ...]          # an MLP's; () for a GPT
    weights: dict[str, np.ndarray]   # the model's state_dict names: "0.weight", ... or "token.weight", ...
    package: dict[str, bytes]        # "tinytorch/core/layers.py" -> source
    gpt: dict | None = None          # a GPT's shape: characters, context, width, heads, layers

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


def gpt_shape(described: dict, where: str) -> dict:
    """The GPT shape of a manifest or of a `tito milestone gpt` checkpoint's description, checked."""
    try:
        shape = {key: int(described[key]) for key in GPT_BOUNDS}
        shape["characters"] = str(described["characters"])
    except (KeyError, TypeError, ValueError):
        raise TitoError(f"{where}: a GPT entry needs characters, context, width, heads and layers (a checkpoint of "
                        "`tito milestone gpt` with the character tokenizer has them)", 2) from None
    if described.get("tokenizer", "char") != "char":
        raise TitoError(f"{where}: the gpt-bpc event takes character models (`tito milestone gpt --tokenizer char`)", 2)
    for key, bound in GPT_BOUNDS.items():
        if not 0 < shape[key] <= bound:
            raise TitoError(f"{where}: the GPT's {key} is {shape[key]}, it must be 1 to {bound}", 2)
    if shape["width"] % shape["heads"] or not 0 < len(set(shape["characters"])) == len(shape["characters"]) <= 1000:
        raise TitoError(f"{where}: the width must divide into the heads and the characters be 1 to 1,000 distinct", 2)
    return shape


def build_gpt(shape: dict):
    """Module 11's GPT of this shape, from the tinytorch importable here (module 13's FusedGPT has the same names)."""
    from tinytorch.core.transformer import GPT

    return GPT(len(shape["characters"]), shape["context"], d_model=shape["width"], num_heads=shape["heads"],
               num_layers=shape["layers"], rng=np.random.default_rng(0))


def check_gpt_weights(weights: dict[str, np.ndarray], shape: dict, where: str) -> None:
    width, layers, vocabulary = shape["width"], shape["layers"], len(shape["characters"])
    least = layers * 12 * width * width + (vocabulary + shape["context"]) * width  # parameters, at the least
    if least * 4 > 2 * MAX_WEIGHTS_BYTES:  # refused before building it
        raise TitoError(f"{where}: the manifest's GPT has over {least:,} parameters, more than an entry may hold", 2)
    expected = {name: array.shape for name, array in build_gpt(shape).state_dict().items()}
    shapes = {name: array.shape for name, array in weights.items()}
    if shapes != expected:
        wrong = sorted(set(shapes) ^ set(expected)) or sorted(n for n in shapes if shapes[n] != expected[n])
        raise TitoError(f"{where}: the weights are not those of the manifest's GPT (first difference: {wrong[0]})", 2)


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
    files = package_files(package)
    manifest = {"format": FORMAT, "event": event, "name": name}
    if event == GPT_EVENT:
        manifest["gpt"] = gpt_shape(_description(weights_path), str(weights_path))
        check_gpt_weights(weights, manifest["gpt"], str(weights_path))
    else:
        manifest["widths"] = list(mlp_widths(weights, str(weights_path)))
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
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


def _description(path: Path) -> dict:

    try:
        return checkpoint_description(path)
    except (KeyError, ValueError, TypeError, OSError):
        raise TitoError(f"{path} is not a checkpoint of `tito milestone gpt`: the gpt-bpc event needs one", 2) from None


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
    _check_package(contents, where)
    if manifest["event"] == GPT_EVENT:
        shape = gpt_shape(manifest.get("gpt") if isinstance(manifest.get("gpt"), dict) else {}, where)
        check_gpt_weights(weights, shape, where)
        return Entry(manifest["name"], manifest["event"], (), weights, contents, shape)
    widths = mlp_widths(weights, where)
    if list(widths) != manifest.get("widths"):
        raise TitoError(f"{where}: the manifest's widths {manifest.get('widths')} are not the weights' {list(widths)}", 2)
    return Entry(manifest["name"], manifest["event"], widths, weights, contents)
