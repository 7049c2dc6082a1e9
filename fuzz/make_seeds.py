"""Writes the fuzz targets' seed corpus (fuzz/seeds/): valid files of every layout dale reads,
and the bad inputs of issue 23, each named for what it is. Run from fuzz/: python3 make_seeds.py"""
import io
import json
import pathlib
import struct
import zipfile

import numpy as np

SEEDS = pathlib.Path("seeds")


def npy(descr, shape, data=b"", fortran=False, version=1, header=None):
    text = header or "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    text = text.encode()
    pre = 10 if version == 1 else 12
    text += b" " * (63 - (pre + len(text)) % 64) + b"\n"
    size = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + data


def saved(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def npz(entries, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


rng = np.random.default_rng(1)
j = rng.standard_normal((5, 5))
npy_seeds = {
    "f32_c": saved(j.astype(np.float32)),
    "f64_c": saved(j),
    "f32_fortran": saved(np.asfortranarray(j.astype(np.float32))),
    "f64_big_endian": saved(j.astype(">f8")),
    "f32_3d_fortran": saved(np.asfortranarray(rng.standard_normal((2, 3, 4)).astype(np.float32))),
    "scalar": saved(np.float32(1.5)),
    "empty": saved(np.zeros((0, 3), np.float32)),
    "version2": npy("<f4", (2, 2), b"\0" * 16, version=2),
    "nan": saved(np.array([1.0, np.nan], np.float32)),
    "f64_beyond_f32": saved(np.array([1e300])),
    "huge_shape_64_bytes": npy("<f4", (200000, 200000), b"\0" * 64),
    "truncated": npy("<f4", (10, 10), b"\0" * 64),
    "shape_overflows": npy("<f4", (2**40, 2**40), b"\0" * 64),
    "int32": npy("<i4", (4, 4), b"\0" * 64),
    "structured": npy("", "", header="{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"),
    "header_4gib": b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFFF) + b"{}",
    "negative_dim": npy("<f4", "(-1, 4)"),
    "no_magic": b"\x94NUMPY\x01\x00\x00\x00",
}
npz_seeds = {
    "stored": npz({"J.npy": npy_seeds["f32_c"], "W_in.npy": npy_seeds["f64_c"]}),
    "deflated": npz({"J.npy": npy_seeds["f32_c"]}, zipfile.ZIP_DEFLATED),
    "deflated_huge_shape": npz({"J.npy": npy_seeds["huge_shape_64_bytes"]}, zipfile.ZIP_DEFLATED),
    "stored_huge_shape": npz({"J.npy": npy_seeds["huge_shape_64_bytes"]}),
    "not_npy_entry": npz({"readme.txt": b"hello", "J.npy": npy_seeds["f64_c"]}),
    "deflated_zeros": npz({"J.npy": npy("<f4", (1000, 1000), b"\0" * 4_000_000)}, zipfile.ZIP_DEFLATED),
}
# Sparse matrices as scipy.sparse.save_npz writes them (spiking connectivity, issue 18).
indptr = np.array([0, 2, 2, 3, 5, 6], np.int32)
indices = np.array([4, 1, 0, 3, 2, 0], np.int32)
values = rng.standard_normal(6).astype(np.float32)


def csr(fmt=b"csr", index_dtype=np.int32):
    return npz({
        "indices.npy": saved(indices.astype(index_dtype)),
        "indptr.npy": saved(indptr.astype(index_dtype)),
        "format.npy": saved(np.array(fmt)),
        "shape.npy": saved(np.array([5, 5], np.int64)),
        "data.npy": saved(values),
    })


npz_seeds.update({
    "csr": csr(),
    "csr_csc": csr(b"csc"),
    "csr_int16_big_endian": csr(index_dtype=">i2"),
})
quick = json.loads(pathlib.Path("../scenes/quickstart.json").read_text())
scene_seeds = {p.stem: p.read_text() for p in pathlib.Path("../scenes").glob("*.json")}


def changed(path, value):
    scene = json.loads(json.dumps(quick))
    *outer, last = path
    node = scene
    for key in outer:
        node = node[key]
    node[last] = value
    return json.dumps(scene)


scene_seeds.update({
    "n_100000": changed(["params", "n"], 100000),
    "trials_2e6": changed(["params", "trials"], 2000000),
    "steps_4e9": changed(["steps"], 4000000000),
    "n_2_pow_40": changed(["params", "n"], 2**40),
    "trials_u64_max": changed(["params", "trials"], 2**64 - 1),
    "every_0": changed(["monitors", "x", "every"], 0),
    "sigma_negative": changed(["params", "sigma"], -1),
    "dt_1e308": changed(["params", "dt"], 1e308),
    "unknown_field": changed(["params", "colour"], "red"),
})
for folder, seeds in (("npy", npy_seeds), ("npz", npz_seeds), ("scene", scene_seeds)):
    for name, data in seeds.items():
        path = SEEDS / folder / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
