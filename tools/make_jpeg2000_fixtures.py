#!/usr/bin/env python3
"""Writes the JPEG 2000 test fixtures of agent/src/capture/finger_record.rs with an independent encoder:
OpenJPEG, through Pillow's wheel (pip install pillow numpy). Lossless (reversible 5/3 wavelet), 8-bit grey.

The pixels are the same formula as `fixture_pixels` in finger_record.rs's tests: (x * 7 + y * 13 + (x * y) % 31) % 256
on a 96x80 image, so the test can check the decode is exact without a copy of the pixels.
"""
import pathlib
import numpy as np
from PIL import Image

W, H = 96, 80
out = pathlib.Path(__file__).resolve().parent.parent / "agent" / "src" / "capture" / "testdata"
y, x = np.mgrid[0:H, 0:W]
px = ((x * 7 + y * 13 + (x * y) % 31) % 256).astype(np.uint8)
im = Image.fromarray(px, "L")
im.save(out / "grey96x80.j2k", irreversible=False)  # raw codestream (SOC FF4F)
im.save(out / "grey96x80.jp2", irreversible=False)  # JP2 file format
im.convert("RGB").save(out / "rgb96x80.j2k", irreversible=False)  # colour: refused by the agent
print("written to", out)
