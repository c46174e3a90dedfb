from __future__ import annotations

import numpy as np

from xsr.digest import canonical_json, sha256_array, sha256_bytes, sha256_file, sha256_json


def test_file_and_bytes_agree(tmp_path):
    f = tmp_path / "blob"
    data = bytes(range(256)) * 9000  # spans several read blocks
    f.write_bytes(data)
    assert sha256_file(f) == sha256_bytes(data)


def test_json_digest_ignores_key_order_but_not_values():
    assert sha256_json({"a": 1, "b": [1, 2]}) == sha256_json({"b": [1, 2], "a": 1})
    assert sha256_json({"a": 1}) != sha256_json({"a": 1.5})
    assert canonical_json({"x": float("nan")}) == '{"x":"nan"}'


def test_array_digest_covers_dtype_shape_and_values():
    a = np.arange(6, dtype="float32")
    assert sha256_array(a) == sha256_array(a.copy())
    assert sha256_array(a) != sha256_array(a.reshape(2, 3))
    assert sha256_array(a) != sha256_array(a.astype("float64"))
    b = a.copy()
    b[3] += 1
    assert sha256_array(a) != sha256_array(b)
    assert sha256_array(np.array(["a", "b"])) != sha256_array(np.array(["ab", ""]))
