#!/usr/bin/env python3
"""The bench's input: a 1600x1500 fingerprint-like 8-bit grey image (px.raw) and its lossless JPEG 2000 encodings
by OpenJPEG through Pillow (pil.j2k codestream, pil.jp2 file). pip install pillow numpy."""
import math
import numpy as np
from PIL import Image

w, h = 1600, 1500
y, x = np.mgrid[0:h, 0:w].astype(float)
dx, dy = x - w / 2, y - h / 2
r = np.sqrt(dx * dx + 0.6 * dy * dy)
a = np.arctan2(dy, dx)
env = np.clip(1 - (r / (0.55 * w)) ** 4, 0, None)
rng = np.random.default_rng(1)
v = 200 - env * (90 + 80 * np.sin(r / 9 * 2 * math.pi + 2 * a)) + rng.integers(-3, 4, size=(h, w))
px = np.clip(v, 0, 255).astype(np.uint8)
open("px.raw", "wb").write(px.tobytes())
im = Image.fromarray(px, "L")
im.save("pil.j2k", irreversible=False)
im.save("pil.jp2", irreversible=False)
