from __future__ import annotations

import json

import mxnet as mx
import numpy as np
import pytest

from splitnet.framework.errors import SplitnetError
from splitnet.zoo import get_model, get_model_spec, list_models, load_reference


def test_registry_has_reference_and_tiny():
    assert {"resnet18_v1", "resnet_tiny"} <= set(list_models())
    assert get_model_spec("resnet_tiny").input_shape == (1, 3, 32, 32)


def test_unknown_model_lists_known_ones():
    with pytest.raises(SplitnetError) as err:
        get_model_spec("resnet9000")
    assert "resnet18_v1" in err.value.one_line() and "resnet_tiny" in err.value.one_line()


def test_get_model_returns_gluon_reference():
    block = get_model("resnet18_v1", classes=1000)
    assert isinstance(block, mx.gluon.HybridBlock)
    assert block(mx.nd.zeros((1, 3, 224, 224))).shape == (1, 1000)


def test_seeded_init_is_deterministic_and_says_so(capsys):
    x = mx.nd.array(np.random.RandomState(1).uniform(size=(1, 3, 32, 32)))
    a = load_reference("resnet_tiny", seed=3)
    b = load_reference("resnet_tiny", seed=3)
    c = load_reference("resnet_tiny", seed=4)
    assert not a.trained and "seed 3" in a.source
    np.testing.assert_array_equal(a.block(x).asnumpy(), b.block(x).asnumpy())
    assert not np.allclose(a.block(x).asnumpy(), c.block(x).asnumpy())
    assert "no trained params" in capsys.readouterr().err


def _ship(tmp_path, block, sha=None):
    path = tmp_path / "tiny.params"
    block.save_parameters(str(path))
    from splitnet.zoo import sha256_of

    entry = {"model": "resnet_tiny", "classes": 10, "file": path.name, "sha256": sha or sha256_of(path)}
    (tmp_path / "manifest.json").write_text(json.dumps({"entries": [entry]}))
    return path


def test_shipped_params_load_when_sha256_matches(tmp_path):
    source = load_reference("resnet_tiny", seed=7)
    _ship(tmp_path, source.block)
    loaded = load_reference("resnet_tiny", seed=0, directory=tmp_path)
    x = mx.nd.ones((1, 3, 32, 32))
    assert loaded.trained and "sha256 verified" in loaded.source
    np.testing.assert_array_equal(loaded.block(x).asnumpy(), source.block(x).asnumpy())


def test_corrupt_params_are_an_error_naming_the_file(tmp_path):
    path = _ship(tmp_path, load_reference("resnet_tiny").block)
    path.write_bytes(path.read_bytes()[:1000])  # truncated download
    with pytest.raises(SplitnetError, match="corrupt or truncated") as err:
        load_reference("resnet_tiny", directory=tmp_path)
    assert str(path) in err.value.one_line() and "fix:" in err.value.one_line()
