"""A Lambda context object for calling the handler outside Lambda."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class FakeLambdaContext:
    """The attributes of ``LambdaContext`` that Powertools and the handler read.

    ``get_remaining_time_in_millis`` counts down from ``timeout_ms`` like the real one.
    """

    timeout_ms: int = 15_000
    function_name: str = "paynet-otp-check"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:eu-central-1:123456789012:function:paynet-otp-check"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed_ms = (time.monotonic() - self._started) * 1000
        return max(int(self.timeout_ms - elapsed_ms), 0)
