"""Record ids shaped like OpenSearch's auto-generated ones: 20 URL-safe characters, time-ordered."""

from __future__ import annotations

import base64
import os
import threading
import time

_lock = threading.Lock()
_last = 0


def new_id() -> str:
    global _last
    with _lock:
        stamp = max(int(time.time() * 1000), _last + 1)
        _last = stamp
    return base64.urlsafe_b64encode(stamp.to_bytes(6, "big") + os.urandom(9)).decode()[:20]
