#!/usr/bin/env python3
"""Writes fuzz/corpus/merkle_proof seeds from the RFC 6962 proof vectors in
storage/audit/testdata/rfc6962 (see merkle_proof_fuzzer.cc for the input
layout): every happy path, every vector of tree 3 (the ones that must be
rejected too) and the additional and single-entry cases, plus a few
generation seeds. Run from anywhere; overwrites the seeds it writes."""
import base64
import glob
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS = os.path.join(ROOT, "storage/audit/testdata/rfc6962")
OUT = os.path.join(ROOT, "fuzz/corpus/merkle_proof")


def hash32(text):
    # Vectors hold hashes of the wrong length on purpose; the layout has a
    # fixed 32-byte slot, so those are cut or zero-padded (the proof, whose
    # last element may be short, keeps them as they are).
    return base64.b64decode(text).ljust(32, b"\0")[:32]


def proof(hashes):
    return b"".join(base64.b64decode(h) for h in hashes or [])


def wanted(path):
    rel = os.path.relpath(path, VECTORS)
    parts = rel.split(os.sep)
    return (parts[-1] == "happy-path.json" or parts[1] in ("3", "additional",
                                                          "single-entry"))


def main():
    os.makedirs(OUT, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(VECTORS, "*/**/*.json"),
                                 recursive=True)):
        if not wanted(path):
            continue
        with open(path) as f:
            v = json.load(f)
        rel = os.path.relpath(path, VECTORS)
        name = rel.replace(os.sep, "_").removesuffix(".json")
        for c in "@[]":
            name = name.replace(c, "")
        if rel.startswith("inclusion"):
            data = (b"\0" + struct.pack("<QQ", v["leafIdx"], v["treeSize"]) +
                    hash32(v["leafHash"]) + hash32(v["root"]) +
                    proof(v["proof"]))
        else:
            data = (b"\1" + struct.pack("<QQ", v["size1"], v["size2"]) +
                    hash32(v["root1"]) + hash32(v["root2"]) +
                    proof(v["proof"]))
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    generated = {
        "small_tree_7_index_5_size1_3": b"\2" + struct.pack("<HHH", 6, 5, 2),
        "small_tree_1024": b"\2" + struct.pack("<HHH", 1023, 1000, 511) +
                           b"entries",
        "big_tree_2_63_plus_1": b"\3" +
                                struct.pack("<QQQ", 12345, 2**63 + 1, 2**62),
        "big_tree_max": b"\3" + struct.pack("<QQQ", 2**64 - 2, 2**64 - 1,
                                            2**63 - 1),
        "big_tree_odd": b"\3" + struct.pack("<QQQ", 999, 1000003, 65537),
    }
    for name, data in generated.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
