#!/usr/bin/env python3
"""Rebuild ``refit_ros/detect/data/pose_landmarker_full.task`` from the mediapipe 0.10.21 wheel.

mediapipe 1.2.2 (the NumPy 2 release refit_ros runs) ships no model files, but its Tasks
``PoseLandmarker`` runs the two BlazePose TFLite models that the 0.10.21 wheel still carries,
once they hold input-normalisation metadata and are zipped together as a ``.task`` bundle:

* ``modules/pose_detection/pose_detection.tflite``      -> ``pose_detector.tflite``
  (input normalised to [-1, 1]: mean 127.5, std 127.5, as in mediapipe's own
  ``pose_detection_cpu.pbtxt``)
* ``modules/pose_landmark/pose_landmark_full.tflite``   -> ``pose_landmarks_detector.tflite``
  (input normalised to [0, 1]: mean 0, std 255, as in ``pose_landmark_by_roi_cpu.pbtxt``)

The metadata is written with 0.10.21's own ``MetadataWriter``, which needs NumPy < 2 and
protobuf < 5, so this script runs in a throwaway venv, never in the project venv. Run with
any Python 3.11 and it creates that venv itself (``--venv``), installs the pins there and
re-executes inside it::

    python3.11 scripts/build_pose_bundle.py            # writes the bundle + NOTICE.md

The zip is written with fixed timestamps and in a fixed order, so a rebuild from the same
wheel gives a byte-identical bundle (compare with the sha256 in ``NOTICE.md``; ``--check``
rebuilds into a temporary file and compares instead of overwriting).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

LOG = logging.getLogger("build_pose_bundle")

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "refit_ros" / "detect" / "data"
DEFAULT_OUT = DATA_DIR / "pose_landmarker_full.task"
DEFAULT_VENV = Path(tempfile.gettempdir()) / "refit-pose-bundle" / "venv"
DEFAULT_WHEEL_DIR = Path(tempfile.gettempdir()) / "refit-pose-bundle" / "wheel"

MEDIAPIPE_VERSION = "0.10.21"
BUILD_PINS = [f"mediapipe=={MEDIAPIPE_VERSION}", "numpy<2", "protobuf<5"]
#: environment variable set when the script re-executes itself inside the build venv
_REEXEC_FLAG = "REFIT_POSE_BUNDLE_REEXEC"

#: (member of the wheel, name inside the .task bundle, norm mean, norm std, description)
MODELS = [
    (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "pose_detector.tflite",
        127.5,
        127.5,
        "BlazePose person detector (224x224 RGB in [-1, 1]).",
    ),
    (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "pose_landmarks_detector.tflite",
        0.0,
        255.0,
        "BlazePose GHUM 3D landmark model, full (256x256 RGB in [0, 1]).",
    ),
]
#: zip entries get this timestamp so rebuilds are byte-identical
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
#: mediapipe mmaps stored (uncompressed) members; align them like its own bundler does
_ZIP_ALIGN = 4


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def in_build_env() -> bool:
    """True when this interpreter has mediapipe 0.10.21 with its NumPy 1 / protobuf 4."""
    try:
        import mediapipe  # noqa: F401
        from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not the build env"
        return False
    return getattr(mediapipe, "__version__", "") == MEDIAPIPE_VERSION


def _pip(cmd: list[str]) -> None:
    """Run a pip command; pass its stderr on, minus the local index's "is ignored" noise."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in (proc.stdout + proc.stderr).splitlines():
        if "is ignored: it is neither a file nor a directory" not in line:
            LOG.info("pip: %s", line)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)


def bootstrap(venv: Path, argv: list[str]) -> int:
    """Create the throwaway venv (if needed), install the pins and re-run this script in it."""
    py = venv / "bin" / "python"
    if not py.exists():
        LOG.info("creating build venv %s", venv)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    LOG.info("installing %s into %s", " ".join(BUILD_PINS), venv)
    _pip([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *BUILD_PINS])
    env = dict(os.environ, **{_REEXEC_FLAG: "1"})
    return subprocess.run([str(py), str(Path(__file__).resolve()), *argv], env=env).returncode


def download_wheel(wheel_dir: Path) -> Path:
    """``pip download --no-deps mediapipe==0.10.21`` (for this platform) into ``wheel_dir``."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    _pip([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
          "--no-deps", "-d", str(wheel_dir), f"mediapipe=={MEDIAPIPE_VERSION}"])
    wheels = sorted(wheel_dir.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"pip download left no mediapipe-{MEDIAPIPE_VERSION} wheel in {wheel_dir}")
    return wheels[0]


def add_metadata(model: bytes, mean: float, std: float, name: str, description: str) -> bytes:
    """Return ``model`` with TFLite metadata: image input normalisation + named outputs."""
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, writer_utils

    buf = bytearray(model)
    writer = metadata_writer.MetadataWriter.create(buf)
    writer.add_general_info(name, description)
    writer.add_image_input(norm_mean=[mean], norm_std=[std])
    # One metadata entry per output, named after the model's tensor (the writer's default
    # path shares a single entry object between all outputs).
    for tensor_name in writer_utils.get_output_tensor_names(buf):
        writer.add_feature_output(name=tensor_name)
    with_md, _ = writer.populate()
    return bytes(with_md)


def write_bundle(members: dict[str, bytes], out: Path) -> None:
    """Write the ``.task`` zip: stored, aligned members with fixed timestamps (reproducible).

    Uses 0.10.21's ``AlignZipFile`` (stored members start on 4-byte boundaries so mediapipe
    can mmap them); members are passed as ``ZipInfo`` with a fixed date instead of names,
    which would stamp the current time.
    """
    from mediapipe.tasks.python.metadata.metadata_writers.model_asset_bundle_utils import (
        AlignZipFile,
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    with AlignZipFile(out, mode="w", alignment=_ZIP_ALIGN) as zf:
        for arcname, data in members.items():
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def notice_text(provenance: dict) -> str:
    src = "\n".join(
        f"| `{m['wheel_member']}` | `{m['bundle_member']}` | {m['norm_mean']} / {m['norm_std']} "
        f"| `{m['source_sha256']}` | `{m['bundled_sha256']}` |"
        for m in provenance["models"]
    )
    return f"""# pose_landmarker_full.task: provenance and licence

`pose_landmarker_full.task` is MediaPipe BlazePose (person detector + BlazePose GHUM 3D
landmark model, "full" variant) packaged as a MediaPipe Tasks model bundle so that
`mediapipe==1.2.2` (`PoseLandmarker`, NumPy 2) runs it offline. Generated by
`scripts/build_pose_bundle.py`; do not edit by hand.

## Source
- Wheel: `{provenance['wheel']}` (PyPI package `mediapipe=={MEDIAPIPE_VERSION}`,
  sha256 `{provenance['wheel_sha256']}`), fetched with `pip download --no-deps`.
  The two model files are the same in every platform's wheel; their own hashes below are
  what a rebuild on another platform must match.
- Bundle sha256: `{provenance['bundle_sha256']}` ({provenance['bundle_bytes']} bytes)

| file in the wheel | name in the bundle | input norm mean / std | sha256 of the source file | sha256 in the bundle |
| --- | --- | --- | --- | --- |
{src}

The only change to each model is the TFLite metadata (input image normalisation, tensor
names) written with mediapipe {MEDIAPIPE_VERSION}'s `MetadataWriter`; weights and graph are
untouched. The normalisations are those of mediapipe's own legacy graphs:
`pose_detection_cpu.pbtxt` feeds the detector [-1, 1] (mean 127.5, std 127.5) and
`pose_landmark_by_roi_cpu.pbtxt` feeds the landmark model [0, 1] (mean 0, std 255).

## Rebuild
From the repository root, with any Python 3.11 (creates a throwaway venv under /tmp with
`{' '.join(BUILD_PINS)}`, never touches the project venv):

```
python3.11 scripts/build_pose_bundle.py           # rewrite the bundle and this NOTICE
python3.11 scripts/build_pose_bundle.py --check   # rebuild to a temp file, compare sha256
```

## Licence
The models and the MediaPipe code that produced them are Copyright The MediaPipe Authors
(Google LLC), licensed under the Apache License, Version 2.0:
https://www.apache.org/licenses/LICENSE-2.0 (the wheel's own metadata declares
`License: Apache 2.0`). The wheel's licence file (the Apache-2.0 text plus the notices
of code bundled in the wheel) is copied unchanged to `LICENSE-mediapipe.txt` beside this
file. Modification: TFLite metadata added and both files repackaged as one `.task` zip, as
described above.

Model card: "BlazePose GHUM 3D" (MediaPipe, Google), which describes the models' intended
use, training data and limitations.
"""


def build(args: argparse.Namespace) -> int:
    wheel = download_wheel(args.wheel_dir)
    wheel_bytes = wheel.read_bytes()
    LOG.info("wheel %s (sha256 %s)", wheel.name, sha256(wheel_bytes))
    members: dict[str, bytes] = {}
    models = []
    with zipfile.ZipFile(wheel) as zw:
        licence = zw.read(f"mediapipe-{MEDIAPIPE_VERSION}.dist-info/LICENSE")
        for member, bundle_name, mean, std, description in MODELS:
            src = zw.read(member)
            data = add_metadata(src, mean, std, bundle_name.removesuffix(".tflite"), description)
            members[bundle_name] = data
            models.append({
                "wheel_member": member, "bundle_member": bundle_name,
                "norm_mean": mean, "norm_std": std,
                "source_sha256": sha256(src), "bundled_sha256": sha256(data),
            })
    out = Path(args.out)
    target = Path(tempfile.mkstemp(suffix=".task")[1]) if args.check else out
    write_bundle(members, target)
    bundle = target.read_bytes()
    provenance = {
        "wheel": wheel.name, "wheel_sha256": sha256(wheel_bytes),
        "bundle": str(out), "bundle_sha256": sha256(bundle), "bundle_bytes": len(bundle),
        "models": models,
    }
    if args.check:
        target.unlink()
        current = sha256(out.read_bytes()) if out.exists() else None
        provenance["committed_sha256"] = current
        provenance["identical"] = current == provenance["bundle_sha256"]
        print(json.dumps(provenance, indent=2))
        return 0 if provenance["identical"] else 1
    if args.notice:
        (out.parent / "NOTICE.md").write_text(notice_text(provenance), encoding="utf-8")
        (out.parent / "LICENSE-mediapipe.txt").write_bytes(licence)
    print(json.dumps(provenance, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="bundle to write")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                        help="throwaway build venv (created if missing)")
    parser.add_argument("--wheel-dir", type=Path, default=DEFAULT_WHEEL_DIR,
                        help="where pip download puts the mediapipe wheel")
    parser.add_argument("--no-notice", dest="notice", action="store_false",
                        help="do not rewrite NOTICE.md beside the bundle")
    parser.add_argument("--check", action="store_true",
                        help="rebuild into a temporary file and compare with --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s: %(message)s")
    if not in_build_env():
        if os.environ.get(_REEXEC_FLAG):
            LOG.error("the build venv %s still lacks mediapipe==%s", args.venv, MEDIAPIPE_VERSION)
            return 1
        return bootstrap(args.venv, argv)
    return build(args)


if __name__ == "__main__":
    sys.exit(main())
