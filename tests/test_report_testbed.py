"""`deployer report` of a real rolled-back release, opened in a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from conftest import Deploy

pytestmark = pytest.mark.testbed

CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) 8-bit pixels of a PNG (enough for a screenshot)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = ctype = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and ctype in (2, 6)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


@pytest.mark.skipif(CHROMIUM is None, reason="chromium-headless-shell is not installed")
def test_report_of_a_rollback_renders_offline_with_its_chart(
    deploy: Deploy, tmp_path: Path
) -> None:
    assert deploy.run("release", "-p", str(deploy.path), "--version", "v1").returncode == 0
    bad = deploy.run(
        "release", "-p", str(deploy.path), "--version", "v2", "--var", "unhealthy_after=5"
    )
    assert bad.returncode == 4, bad.stdout + bad.stderr
    page = tmp_path / "rollback.html"
    out = deploy.run("-o", "json", "report", "-p", str(deploy.path), "-O", str(page))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["chain_ok"] is True
    text = page.read_text()
    for fetch in ("<script", "src=", "href=", "url(", "@import"):  # nothing to load: offline
        assert fetch not in text
    assert "rolled_back" in text and 'class="req"' in text and 'class="err"' in text
    assert ">switch</text>" in text and ">rollback</text>" in text
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--window-size=1100,1300", f"--screenshot={shot}", page.as_uri(),
        ],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.is_file() and shot.stat().st_size > 5000
    width, height, rows = png_pixels(shot.read_bytes())
    bpp = len(rows[0]) // width
    colors = {
        rows[y][x * bpp : x * bpp + 3] for y in range(0, height, 4) for x in range(0, width, 4)
    }
    assert len(colors) > 20, "the screenshot is blank"
    # the chart's blue request bars (#8ab4f8) and red error bars (#d93025) were painted

    def seen(rgb: tuple[int, int, int]) -> bool:
        return any(all(abs(p - q) < 24 for p, q in zip(px, rgb, strict=True)) for px in colors)

    assert seen((0x8A, 0xB4, 0xF8)) and seen((0xD9, 0x30, 0x25))
    whole = tmp_path / "period.html"
    period = deploy.run("report", "-p", str(deploy.path), "--since", "1d", "-O", str(whole))
    assert period.returncode == 0 and "DORA" in whole.read_text()
