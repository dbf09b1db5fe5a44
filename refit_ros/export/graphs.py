"""The four stage graphs every backend runs and the exporter writes to ONNX.

Each is a small ``nn.Module`` over flat tensors (no dataclasses, no Python branching on
values) wrapping the graph-friendly copy of a network (:meth:`ModelFamily.graph_copy`):

* :class:`EncoderGraph` -- encoder inputs -> features (``corr``, ``z`` for ReFit),
* :class:`InitGraph` -- features + crop camera -> cold state (mean body + one regressor step),
* :class:`StepGraph` -- features + state + camera -> next state; the markers of the
  incoming body are posed through the body model and reprojected *inside* the graph,
* :class:`BodyGraph` -- ``pose6d``, ``betas``, ``cam`` + camera -> vertices, joints,
  translation and joints in crop pixels (what the pipeline publishes).

The state crosses every boundary explicitly (:data:`STATE_NAMES`), so a tracker can feed
last frame's state back (warm start) to any backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from refit_ros.geometry.camera import CropCamera
from refit_ros.models.refit.state import RefitState
from refit_ros.export.families import (BATCH_AXIS, BODY_OUTPUT_NAMES, CAMERA_NAMES,
                                        STATE_NAMES, ModelFamily, TensorSpec, camera_specs)

#: Suffix of a state output (``pose6d`` in -> ``pose6d_next`` out).
NEXT = "_next"


@dataclass(frozen=True)
class StageSignature:
    """Inputs and outputs of one stage graph (before the exporter prunes unused inputs)."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.inputs)


def _camera(t: tuple[Tensor, ...], crop_size: int) -> CropCamera:
    return CropCamera(*t, crop_size=crop_size)


def _state(t: tuple[Tensor, ...]) -> RefitState:
    return RefitState(*t)


def _crop_size(net: nn.Module) -> int:
    return int(net.config.crop_size)


class _Stage(nn.Module):
    def __init__(self, net: nn.Module, family: ModelFamily):
        super().__init__()
        self.net = net
        self.family = family
        self.features = family.feature_names(net)


class EncoderGraph(_Stage):
    """Encoder inputs -> feature tensors (in ``family.feature_names`` order)."""

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        feats = self.family.encode_graph(self.net, *inputs)
        return tuple(getattr(feats, n) for n in self.features)


class InitGraph(_Stage):
    """Features + camera -> the cold state (:data:`STATE_NAMES`)."""

    def forward(self, *args: Tensor) -> tuple[Tensor, ...]:
        nf = len(self.features)
        feats = self.family.make_features(dict(zip(self.features, args[:nf])))
        state = self.net.init_state(feats, _camera(args[nf:], _crop_size(self.net)))
        return tuple(getattr(state, n) for n in STATE_NAMES)


class StepGraph(_Stage):
    """Features + state + camera -> next state. The state's body cache is not an input:
    the step poses the incoming body itself (markers through the body model)."""

    def forward(self, *args: Tensor) -> tuple[Tensor, ...]:
        nf, ns = len(self.features), len(STATE_NAMES)
        feats = self.family.make_features(dict(zip(self.features, args[:nf])))
        state = _state(args[nf:nf + ns])
        new = self.net.step(state, feats, _camera(args[nf + ns:], _crop_size(self.net)))
        return tuple(getattr(new, n) for n in STATE_NAMES)


class BodyGraph(_Stage):
    """``pose6d``, ``betas``, ``cam`` + camera -> vertices, joints, translation, joints2d."""

    def forward(self, pose6d: Tensor, betas: Tensor, cam: Tensor, *camera: Tensor
                ) -> tuple[Tensor, ...]:
        state = RefitState(pose6d=pose6d, betas=betas, cam=cam, hpose=None, hshape=None,
                           hcam=None)
        pred = self.net.predict(state, _camera(camera, _crop_size(self.net)))
        return pred.vertices, pred.joints, pred.translation, pred.joints2d_crop


def state_specs(net: nn.Module) -> tuple[TensorSpec, ...]:
    """Specs of the loop state of ``net`` (``B x 144``, ``B x K``, ``B x 3``, hidden)."""
    b = BATCH_AXIS
    h = int(net.config.hidden_dim)
    k = int(net.init_shape.shape[-1])
    return (TensorSpec("pose6d", (b, 144)), TensorSpec("betas", (b, k)),
            TensorSpec("cam", (b, 3)), TensorSpec("hpose", (b, 24, h)),
            TensorSpec("hshape", (b, h)), TensorSpec("hcam", (b, h)))


def signatures(net: nn.Module, family: ModelFamily,
               feature_shapes: dict[str, tuple[int, ...]]) -> dict[str, StageSignature]:
    """Signatures of the four stages.

    Parameters
    ----------
    feature_shapes : dict
        Per-person shape of each feature (from one traced encoder run).
    """
    feats = tuple(TensorSpec(n, (BATCH_AXIS,) + tuple(feature_shapes[n]))
                  for n in family.feature_names(net))
    clash = {s.name for s in family.encoder_inputs(net)} & {s.name for s in feats}
    if clash:  # ONNX names are single-assignment: an input cannot also be an output
        raise ValueError(f"{family.name}: encoder inputs and features share names {sorted(clash)}")
    cam = camera_specs()
    st = state_specs(net)
    state_out = tuple(n + NEXT for n in STATE_NAMES)
    return {
        "encoder": StageSignature(family.encoder_inputs(net), tuple(s.name for s in feats)),
        "init": StageSignature(feats + cam, state_out),
        "step": StageSignature(feats + st + cam, state_out),
        "body": StageSignature(st[:3] + cam, BODY_OUTPUT_NAMES),
    }


def stage_io_names(net: nn.Module, family: ModelFamily) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Input and output names of the four stages (before any pruning by an exporter)."""
    feats = tuple(family.feature_names(net))
    state_out = tuple(n + NEXT for n in STATE_NAMES)
    return {"encoder": (tuple(s.name for s in family.encoder_inputs(net)), feats),
            "init": (feats + CAMERA_NAMES, state_out),
            "step": (feats + STATE_NAMES + CAMERA_NAMES, state_out),
            "body": (STATE_NAMES[:3] + CAMERA_NAMES, BODY_OUTPUT_NAMES)}


def build_stage_graphs(net: nn.Module, family: ModelFamily) -> dict[str, nn.Module]:
    """The four stage modules over one graph-friendly copy of ``net`` (eval mode)."""
    twin = family.graph_copy(net.eval())
    return {"encoder": EncoderGraph(twin, family).eval(), "init": InitGraph(twin, family).eval(),
            "step": StepGraph(twin, family).eval(), "body": BodyGraph(twin, family).eval()}


__all__ = ["BodyGraph", "CAMERA_NAMES", "EncoderGraph", "InitGraph", "NEXT", "StageSignature",
           "StepGraph", "build_stage_graphs", "signatures", "stage_io_names", "state_specs"]
