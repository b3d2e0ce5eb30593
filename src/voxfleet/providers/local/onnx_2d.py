"""Piper's 1-D convolutions, rewritten as 2-D convolutions of height 1.

onnxruntime's fast convolution kernels on x86 (its NCHWc layout, MLAS) apply
to 2-D convolutions only; a 1-D Conv runs as im2col and a matrix multiply.
Piper's voice is almost all 1-D convolutions (its HiFi-GAN decoder), so each
becomes Unsqueeze -> the same Conv with a kernel of height 1 -> Squeeze: the
same arithmetic (the audio matches to within float rounding, a few LSB of
16-bit PCM) for ~16-25% less CPU per second of speech (docs/performance.md).

The rewrite runs in a child process when the voice loads, into a temporary
file that onnxruntime then reads: the agent never imports ``onnx`` (~40 MiB)
nor keeps the protobuf's memory (~80 MiB more RSS when done in process). The
shipped file is not touched."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnxruntime as ort

from voxfleet.observability.logging import get_logger

if TYPE_CHECKING:
    import onnx

log = get_logger(__name__)
CONVOLUTIONS = ("Conv", "ConvTranspose")
_AXIS = "voxfleet_height_axis"  # the initializer holding [2], where height goes


def _attributes_2d(node: onnx.NodeProto) -> dict[str, Any]:
    """The node's attributes for a kernel of height 1."""
    from onnx import helper

    attributes: dict[str, Any] = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if attribute.name in ("kernel_shape", "strides", "dilations", "output_shape"):
            value = [1, *value]
        elif attribute.name == "output_padding":
            value = [0, *value]
        elif attribute.name == "pads":  # [begin, end] -> [top, begin, bottom, end]
            value = [0, value[0], 0, value[1]]
        attributes[attribute.name] = value
    return attributes


def convolutions_2d(model: onnx.ModelProto) -> int:
    """Rewrite ``model``'s 1-D convolutions in place; how many there were."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {w.name: w for w in graph.initializer}
    widened: set[str] = set()
    nodes: list[onnx.NodeProto] = []
    converted = 0
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type in CONVOLUTIONS else None
        if weight is None or (len(weight.dims) != 3 and weight.name not in widened):
            nodes.append(node)
            continue
        if weight.name not in widened:  # a weight may be shared by several nodes
            kernel = numpy_helper.to_array(weight)
            weight.CopyFrom(numpy_helper.from_array(kernel[:, :, None, :], weight.name))
            widened.add(weight.name)
        x, y = node.input[0], node.output[0]
        x4, y4 = f"{x}/{node.name or len(nodes)}/2d", f"{y}/2d"
        nodes.append(helper.make_node("Unsqueeze", [x, _AXIS], [x4]))
        nodes.append(
            helper.make_node(
                node.op_type, [x4, *node.input[1:]], [y4], name=node.name, **_attributes_2d(node)
            )
        )
        nodes.append(helper.make_node("Squeeze", [y4, _AXIS], [y]))
        converted += 1
    if widened:
        graph.initializer.append(numpy_helper.from_array(np.array([2], dtype=np.int64), _AXIS))
    del graph.node[:]
    graph.node.extend(nodes)
    return converted


def write_2d(source: Path, target: Path) -> int:
    """``source`` with its 1-D convolutions as 2-D ones, saved as ``target``."""
    import onnx

    model = onnx.load(str(source))
    converted = convolutions_2d(model)
    onnx.save(model, str(target))
    return converted


def session_2d(source: Path, options: ort.SessionOptions) -> ort.InferenceSession:
    """An onnxruntime session of the model at ``source``, rewritten (in a child
    process) with 2-D convolutions; of the model as shipped, with a warning,
    when the rewrite cannot be made (no room in the temporary directory: the
    chart and Compose give /tmp 64 MiB, the rewritten voice takes 61)."""
    try:
        with tempfile.TemporaryDirectory(prefix="voxfleet-2d-") as tmp:
            target = Path(tmp) / source.name
            subprocess.run(  # noqa: S603 - this interpreter, this module, our own paths
                [sys.executable, "-m", __name__, str(source), str(target)],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            return ort.InferenceSession(
                str(target), sess_options=options, providers=["CPUExecutionProvider"]
            )
    except (OSError, subprocess.CalledProcessError) as e:
        detail = (
            e.stderr.decode(errors="replace")[-500:]
            if isinstance(e, subprocess.CalledProcessError)
            else str(e)
        )
        log.warning(
            "model kept as shipped: its 1-D convolutions could not be rewritten",
            model=source.name,
            error=detail.strip(),
        )
    return ort.InferenceSession(
        str(source), sess_options=options, providers=["CPUExecutionProvider"]
    )


if __name__ == "__main__":
    write_2d(Path(sys.argv[1]), Path(sys.argv[2]))
