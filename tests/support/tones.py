"""Who hears whom, from the wire: each sipp phone sends a tone of its own (sipp's rtp_stream
playing a raw mu-law file), and a tap on the loopback interface (AF_PACKET, as root, like the
lab) collects the RTP each phone's media port is sent; Goertzel's filter then says which tones
reached it. Asterisk mixes and re-encodes, so a tone arrives as a share of the power, not as the
same bytes."""

from __future__ import annotations

import math
import re
import socket
import struct
import threading
import time
from collections import defaultdict
from pathlib import Path

RATE = 8000
PACKET_OUTGOING = 4  # sll_pkttype of the copy of a loopback packet seen leaving
_ETH_P_ALL = 0x0003


def ulaw_byte(sample: int) -> int:
    """G.711 mu-law of a 16-bit linear sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), clip) + bias
    exponent = max(0, magnitude.bit_length() - 8)
    exponent = min(exponent, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_sample(byte: int) -> int:
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -magnitude if sign else magnitude


def tone_file(path: Path, hz: float, seconds: float = 2.0, level: float = 0.3) -> Path:
    """A raw mu-law file (sipp's rtp_stream, payload type 0) of a sine at `hz`; whole periods
    only, so that looping it is seamless."""
    n = int(RATE * seconds)
    path.write_bytes(bytes(ulaw_byte(int(level * 32767 * math.sin(2 * math.pi * hz * i / RATE)))
                           for i in range(n)))
    return path


def with_tone(scenario: Path, tone: Path, out: Path, *, after: str, bye_timeout_ms: int = 60000) -> Path:
    """`scenario` with the phone streaming `tone` (looped) right after the element matching
    `after` (a regular expression), and waiting up to `bye_timeout_ms` for the BYE."""
    text = scenario.read_text()
    start = f'\n  <nop><action><exec rtp_stream="{tone},-1,0"/></action></nop>\n'
    match = re.search(after, text, re.S)
    assert match is not None, f"{after!r} not in {scenario.name}"
    text = text[:match.end()] + start + text[match.end():]
    text = re.sub(r'<recv request="BYE" timeout="\d+"/>', f'<recv request="BYE" timeout="{bye_timeout_ms}"/>',
                  text)
    out.write_text(text)
    return out


def share(samples: list[int], hz: float) -> float:
    """The share of the samples' power at `hz` (Goertzel), 0..1: about 1 for a pure tone at
    `hz`, about 1/n for n equal tones mixed, about 0 when `hz` is absent."""
    if not samples:
        return 0.0
    k = 2 * math.cos(2 * math.pi * hz / RATE)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    power = (s1 * s1 + s2 * s2 - k * s1 * s2) / len(samples)
    total = sum(x * x for x in samples)
    return 2 * power / total if total else 0.0


class RtpTap:
    """The PCMU payloads sent to each UDP port on the loopback interface, while running."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(_ETH_P_ALL))
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._payloads: dict[int, list[tuple[float, bytes]]] = defaultdict(list)
        self._thread = threading.Thread(target=self._run, name="rtp-tap", daemon=True)

    def __enter__(self) -> RtpTap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, address = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            if address[2] == PACKET_OUTGOING:
                continue
            self._take(frame[14:])

    def _take(self, ip: bytes) -> None:
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
            return
        udp = ip[(ip[0] & 0x0F) * 4:]
        if len(udp) < 8 + 12:
            return
        port = struct.unpack("!H", udp[2:4])[0]
        rtp = udp[8:]
        if rtp[0] >> 6 != 2 or rtp[1] & 0x7F != 0:  # RTP version 2, PCMU
            return
        header = 12 + 4 * (rtp[0] & 0x0F)
        with self._lock:
            self._payloads[port].append((time.monotonic(), rtp[header:]))

    def samples(self, port: int, since: float, until: float | None = None) -> list[int]:
        """What port `port` was sent between `since` and `until` (time.monotonic()), decoded."""
        with self._lock:
            chunks = [p for at, p in self._payloads.get(port, [])
                      if at >= since and (until is None or at < until)]
        return [ulaw_sample(b) for chunk in chunks for b in chunk]

    def ports(self) -> dict[int, int]:
        """Packets seen per destination port (for a failure's message)."""
        with self._lock:
            return {port: len(p) for port, p in self._payloads.items()}
