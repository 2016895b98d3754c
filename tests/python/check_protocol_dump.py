#!/usr/bin/python3
"""ctest protocol_doc_dump: PROTOCOL.md's byte dump is the tool's real output.

Runs skirmish-frame-dump and compares its output with the code block between
the `<!-- frame-dump:begin -->` and `<!-- frame-dump:end -->` markers of
protocol/PROTOCOL.md. On a mismatch, prints a diff and exits 1.
"""

import argparse
import difflib
import re
import subprocess
import sys

BLOCK_RE = re.compile(r"<!-- frame-dump:begin -->\n```text\n(.*?)```\n<!-- frame-dump:end -->", re.DOTALL)


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
        m = BLOCK_RE.search(f.read())
    if m is None:
        print(f"FAIL {opts.doc}: no ```text block between the frame-dump markers")
        return 1
    if m.group(1) == run.stdout:
        print("PASS PROTOCOL.md byte dump matches skirmish-frame-dump")
        return 0
    print(f"FAIL {opts.doc} byte dump differs from skirmish-frame-dump; regenerate it:")
    sys.stdout.writelines(difflib.unified_diff(m.group(1).splitlines(True), run.stdout.splitlines(True),
                                               "PROTOCOL.md", "skirmish-frame-dump"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
