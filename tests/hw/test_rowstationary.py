"""The row-stationary mapping against the figures Eyeriss published for AlexNet."""
from __future__ import annotations

import numpy as np

from nasco.hw._rowstationary import rs_accesses, rs_compute_cycles, rs_mapping

# AlexNet's conv layers as Eyeriss ran them, per group: (R, S, E, F, C, M, groups)
# (Krizhevsky et al., NeurIPS 2012; Chen et al., JSSC 2017).
ALEXNET = [(11, 11, 55, 55, 3, 96, 1), (5, 5, 27, 27, 48, 128, 2), (3, 3, 13, 13, 256, 384, 1),
           (3, 3, 13, 13, 192, 192, 2), (3, 3, 13, 13, 192, 128, 2)]


def test_alexnet_active_pes_on_a_12x14_array():
    """Eyeriss (JSSC 2017) reports 154 active PEs for CONV1 and 156 for CONV3-5."""
    peak = []
    avg = []
    for r, s, e, f, c, m, _g in ALEXNET:
        mp = rs_mapping(12, 14, r, e, c * m)
        peak.append(int(mp["set_h"] * mp["set_w"] * mp["copies"]))
        cycles = int(rs_compute_cycles(12, 14, r, s, e, f, c, m))
        avg.append(r * s * e * f * c * m / cycles)
    assert peak[0] == 154 and peak[2:] == [156, 156, 156]
    # CONV2's 27 ofmap rows split into strips of 14 and 13 rows: 135 PEs on average
    assert avg[1] == 135.0
    assert all(a <= 168 for a in avg)


def test_cycles_cover_every_mac_and_grow_with_batch():
    rng = np.random.default_rng(0)
    r = rng.integers(1, 8, 200)
    e = rng.integers(1, 60, 200)
    c = rng.integers(1, 64, 200)
    m = rng.integers(1, 64, 200)
    rows = rng.integers(2, 20, 200)
    cols = rng.integers(2, 20, 200)
    cyc = rs_compute_cycles(rows, cols, r, r, e, e, c, m)
    macs = r * r * e * e * c * m
    assert (cyc * rows * cols >= macs).all()
    assert (rs_compute_cycles(rows, cols, r, r, e, e, c, m, batch=4) == 4 * cyc).all()
    mp = rs_mapping(rows, cols, r, e, c * m)
    assert (mp["copies"] <= c * m).all() and (mp["set_h"] <= rows).all() and (mp["set_w"] <= cols).all()


def test_tall_filters_fold_and_wide_ofmaps_strip():
    mp = rs_mapping(12, 14, 25, 30, 1)
    assert int(mp["folds"]) == 3 and int(mp["set_h"]) == 9
    assert int(mp["strips"]) == 3 and int(mp["set_w"]) == 10


def test_register_file_and_buffer_accesses():
    acc = rs_accesses(12, 14, 3, 3, 15, 13, 13, 4, 8)
    macs = 3 * 3 * 13 * 13 * 4 * 8
    assert int(acc["macs"]) == macs and int(acc["rf"]) == 4 * macs
    mp = rs_mapping(12, 14, 3, 13, 32)  # 4 copies of a 3 x 13 set, 8 passes
    runs = int(mp["passes"] * mp["copies"])
    assert runs == 32
    assert int(acc["glb_writes"]) == runs * 13 * 13
    # psums of 8 filters x 13 x 13 outputs are written once per channel: 3 re-reads each
    assert int(acc["glb_reads"]) == runs * 3 * 3 + runs * (3 + 13 - 1) * 15 + (runs * 13 * 13 - 13 * 13 * 8)
    assert int(acc["noc"]) == int(acc["glb_reads"] + acc["glb_writes"])
