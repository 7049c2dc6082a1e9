"""Writes the synapses of a 300-neuron network (240 excitatory) as a SciPy user would, for
tests/numpy_readback.rs: usage python3 csr_connectivity.py DIR.

- w.npz: scipy.sparse.save_npz of a csr_matrix W[pre, post] built from raw arrays, each row's
  targets in shuffled order and some of them twice (scipy sums repeats), int32 indices;
- w64.npz: the same matrix with int64 indptr and indices;
- w.npy: W.toarray() as float32, the dense form of the same weights;
- csc.npz: the same matrix saved in CSC format, which dale must refuse;
- expected.json: the number of distinct synapses."""
import json
import pathlib
import sys

import numpy as np
import scipy.sparse

out = pathlib.Path(sys.argv[1])
n, excitatory, p = 300, 240, 0.1
rng = np.random.default_rng(3)
indptr, indices, data = [0], [], []
distinct = 0
for j in range(n):
    targets = [k for k in np.flatnonzero(rng.random(n) < p) if k != j]
    distinct += len(targets)
    weight = 1.62 if j < excitatory else -9.0
    row = [(k, np.float32(weight)) for k in targets]
    if targets and j % 7 == 0:
        # A repeated synapse: two halves of the weight, summed when read.
        k = targets[0]
        row[0] = (k, np.float32(weight / 2))
        row.append((k, np.float32(weight / 2)))
    rng.shuffle(row)
    indices += [k for k, _ in row]
    data += [w for _, w in row]
    indptr.append(len(indices))
w = scipy.sparse.csr_matrix(
    (np.array(data, np.float32), np.array(indices, np.int32), np.array(indptr, np.int32)),
    shape=(n, n),
)
assert not w.has_canonical_format
scipy.sparse.save_npz(out / "w.npz", w, compressed=True)
wide = w.copy()
wide.indptr = wide.indptr.astype(np.int64)
wide.indices = wide.indices.astype(np.int64)
scipy.sparse.save_npz(out / "w64.npz", wide, compressed=False)
np.save(out / "w.npy", w.toarray().astype(np.float32))
scipy.sparse.save_npz(out / "csc.npz", w.tocsc())
(out / "expected.json").write_text(json.dumps({"n": n, "excitatory": excitatory, "synapses": distinct}))
