"""PNG and WAV encoding with the standard library only (no Pillow needed to serve images)."""
from __future__ import annotations

import struct
import zlib

import numpy as np

UNKNOWN_SIZE = 0xFFFFFFFF  # a streamed WAV's sizes, not known when its header goes out


def png(image: np.ndarray) -> bytes:
    """An RGB PNG of `image`: uint8 [H, W, 3]."""
    h, w, c = image.shape
    if c != 3 or image.dtype != np.uint8:
        raise ValueError("png() takes uint8 [H, W, 3]")
    rows = np.concatenate([np.zeros((h, 1), np.uint8), image.reshape(h, w * 3)], axis=1)  # filter byte 0

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + \
        chunk(b"IEND", b"")


def to_uint8_rgb(image) -> np.ndarray:
    """A [3, H, W] float image in [0, 1] (torch or numpy) -> uint8 [H, W, 3]."""
    x = image.float().cpu().numpy() if hasattr(image, "float") else np.asarray(image, dtype=np.float32)
    return (np.clip(np.nan_to_num(x), 0, 1).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)


def wav_header(sample_rate: int, data_bytes: int | None, channels: int = 1, bits: int = 16) -> bytes:
    """A 44-byte PCM WAV header; `data_bytes` None writes the streaming placeholder sizes."""
    size = UNKNOWN_SIZE if data_bytes is None else data_bytes
    riff = UNKNOWN_SIZE if data_bytes is None else 36 + data_bytes
    block = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, bits) +
            b"data" + struct.pack("<I", size))
