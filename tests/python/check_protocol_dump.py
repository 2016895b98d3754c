#!/usr/bin/python3
"""ctest protocol_doc_dump: PROTOCOL.md's byte dumps are real.

Runs skirmish-frame-dump and compares its output with the code block between
the `<!-- frame-dump:begin -->` and `<!-- frame-dump:end -->` markers of
protocol/PROTOCOL.md. Then checks the view-delta example between
`<!-- view-delta:begin -->` and `<!-- view-delta:end -->` (lines `base`,
`view`, `delta` of hex bytes) with the Python client's codec
(client/python/skirmish_client.py): encode_delta(base, view) is the delta
and apply_delta(base, delta) is the view. On a mismatch, prints what differs
and exits 1.
"""

import argparse
import difflib
import pathlib
import re
import subprocess
import sys

CLIENT_DIR = pathlib.Path(__file__).resolve().parent.parent.parent / "client" / "python"

BLOCK_RE = re.compile(r"<!-- frame-dump:begin -->\n```text\n(.*?)```\n<!-- frame-dump:end -->", re.DOTALL)
DELTA_RE = re.compile(r"<!-- view-delta:begin -->\n```text\n(.*?)```\n<!-- view-delta:end -->", re.DOTALL)


def check_view_delta(doc_text):
    """The view-delta example block against the Python codec; 0 or 1."""
    m = DELTA_RE.search(doc_text)
    if m is None:
        print("FAIL PROTOCOL.md: no ```text block between the view-delta markers")
        return 1
    rows = {}
    for line in m.group(1).splitlines():
        name, _, hexes = line.partition(" ")
        rows[name] = bytes.fromhex(hexes.replace(" ", ""))
    if set(rows) != {"base", "view", "delta"}:
        print(f"FAIL PROTOCOL.md view-delta block: lines {sorted(rows)}, want base, view, delta")
        return 1
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, str(CLIENT_DIR))
    import skirmish_client as sk  # the codec needs no generated code
    enc = sk.encode_delta(rows["base"], rows["view"])
    if enc != rows["delta"]:
        print(f"FAIL PROTOCOL.md view-delta: the encoder gives {enc.hex(' ')}, the doc says {rows['delta'].hex(' ')}")
        return 1
    got = sk.apply_delta(rows["base"], rows["delta"])
    if got != rows["view"]:
        print(f"FAIL PROTOCOL.md view-delta: the delta applies to {got.hex(' ')}, the doc says {rows['view'].hex(' ')}")
        return 1
    print("PASS PROTOCOL.md view-delta example matches the codec")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frame-dump", required=True, help="skirmish-frame-dump binary")
    ap.add_argument("--doc", required=True, help="protocol/PROTOCOL.md")
    opts = ap.parse_args()

    run = subprocess.run([opts.frame_dump], capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        print(f"FAIL skirmish-frame-dump exited {run.returncode}: {run.stderr.strip()}")
        return 1
    with open(opts.doc, encoding="utf-8") as f:
        text = f.read()
    m = BLOCK_RE.search(text)
    if m is None:
        print(f"FAIL {opts.doc}: no ```text block between the frame-dump markers")
        return 1
    if m.group(1) == run.stdout:
        print("PASS PROTOCOL.md byte dump matches skirmish-frame-dump")
        return check_view_delta(text)
    print(f"FAIL {opts.doc} byte dump differs from skirmish-frame-dump; regenerate it:")
    sys.stdout.writelines(difflib.unified_diff(m.group(1).splitlines(True), run.stdout.splitlines(True),
                                               "PROTOCOL.md", "skirmish-frame-dump"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
