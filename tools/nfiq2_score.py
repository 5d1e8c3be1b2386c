#!/usr/bin/env python3
"""Compute NFIQ 2 (ISO/IEC 29794-4) quality scores for fingerprint PNGs.

Reference oracle for the Rust quality-score benchmark.  The benchmark writes
each test image as an 8-bit greyscale, 500 ppi PNG and runs

    python3 tools/nfiq2_score.py IMG1.png IMG2.png ...

then reads stdout, one JSON object per line:

    {"file": "IMG1.png", "nfiq2": 57, "seconds": 0.061}
    {"file": "IMG2.png", "nfiq2": null, "seconds": 0.004, "error": "..."}
    {"mean_seconds_per_image": 0.061}

* "nfiq2" is the NFIQ 2 unified quality score, an integer 0..100 (higher is
  better).  It is null when NFIQ 2 rejected the image; "error" says why.
  NFIQ 2 rejects, for example, blank images, very small images (a 128x128
  test failed), and patterns where its FingerJet minutiae detector finds
  nothing.  These show up as "Nfiq2ComputeFailed(2)".
* "seconds" is the wall-clock time of one nbis call (PNG decode + NBIS
  mindtct + NFIQ 2) for that image.  Reading the file from disk and the
  one-off NFIQ 2 model load (about 0.3 s, at start-up) are not included.
* The last line gives the mean of "seconds" over the images that got a
  score, or null if none did.

Exit status: 0 when every file was handled (even if some got null),
1 if a file could not be read, 2 on a usage error, and 3 if the nbis-py
package cannot be imported.  In that case stderr gets a one-line message,
so the benchmark can skip the comparison.

Dependency: the PyPI package `nbis-py` (import name `nbis`), version 0.1.3
tested.  Install it with `python3 -m pip install --no-input nbis-py==0.1.3`.
It is a self-contained manylinux_2_34 x86_64 wheel: NBIS, NFIQ 2.3,
OpenCV and the NFIQ 2 random-forest model are all compiled into one .so.
It needs no numpy, no Pillow and nothing from apt.  nbis decodes the PNG
bytes itself and converts them to 8-bit luma.

The API is only reachable through the minutiae extractor: with
compute_nfiq2=True, NbisExtractor.extract_minutiae(png_bytes) also runs
NFIQ 2, and Minutiae.quality().score holds the result.  The wrapper fixes
the NFIQ 2 resolution at 500 ppi.  The `ppi` setting only affects NBIS
mindtct, and None means its default of 500.
"""

import json
import sys
import time

try:
    import nbis  # PyPI: nbis-py
except Exception as exc:  # ImportError, or OSError if the bundled .so fails to load
    sys.stderr.write(
        "nfiq2_score: nbis-py is not importable (pip install nbis-py): %s\n"
        % str(exc).replace("\n", " ")
    )
    sys.exit(3)


def make_extractor():
    """Build one extractor and reuse it: construction loads the NFIQ 2 model."""
    settings = nbis.NbisExtractorSettings(
        min_quality=0.0,          # keep all minutiae (not used here anyway)
        get_center=False,         # skip ROI/centre estimation (saves time)
        check_fingerprint=False,  # skip the SIVV "is this a fingerprint" check
        compute_nfiq2=True,       # this is what we want
        ppi=None,                 # mindtct default = 500 ppi
    )
    return nbis.new_nbis_extractor(settings)


def score_one(extractor, path):
    """Return one output record (a dict) for the image at `path`."""
    with open(path, "rb") as fh:
        data = fh.read()
    t0 = time.perf_counter()
    try:
        score = int(extractor.extract_minutiae(data).quality().score)
        err = None
    except nbis.NbisError as exc:  # e.g. Nfiq2ComputeFailed(2), ImageLoadError
        score, err = None, repr(exc)
    rec = {"file": path, "nfiq2": score, "seconds": round(time.perf_counter() - t0, 6)}
    if err is not None:
        rec["error"] = err
    return rec


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write("usage: nfiq2_score.py IMAGE.png [IMAGE.png ...]\n")
        return 2
    extractor = make_extractor()
    ok_times = []
    status = 0
    for path in argv:
        try:
            rec = score_one(extractor, path)
        except OSError as exc:  # missing or unreadable file
            rec = {"file": path, "nfiq2": None, "seconds": 0.0, "error": repr(exc)}
            status = 1
        if rec["nfiq2"] is not None:
            ok_times.append(rec["seconds"])
        print(json.dumps(rec), flush=True)
    mean = round(sum(ok_times) / len(ok_times), 6) if ok_times else None
    print(json.dumps({"mean_seconds_per_image": mean}), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
