"""Bot API sandbox: image header parsing and Telegram-looking file identifiers."""

from __future__ import annotations

import secrets
import struct


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, JPEG, GIF or WebP image from its header, else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return w, h
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return w, h
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return w, h
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L":
            b = int.from_bytes(data[21:25], "little")
            return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG), CC (DAC) do not.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def new_file_id(kind: str) -> tuple[str, str]:
    """A fresh (file_id, file_unique_id) shaped like Telegram's (opaque base64url)."""
    prefix = {
        "photo": "AgACAgIAAxkBAAI",
        "document": "BQACAgIAAxkBAAI",
        "sticker": "CAACAgIAAxkBAAI",
    }
    return (
        prefix.get(kind, "BQACAgIAAxkBAAI") + secrets.token_urlsafe(48),
        "AQAD" + secrets.token_urlsafe(9),
    )


def photo_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """The sizes Telegram generates for a photo: thumbnails then the largest (≤ 1280)."""
    side = max(width, height) or 1
    sizes: list[tuple[int, int]] = []
    for target in (90, 320, 800, 1280):
        if side > target or target == 1280:
            scale = min(1.0, target / side)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            if size not in sizes:
                sizes.append(size)
    return sizes
