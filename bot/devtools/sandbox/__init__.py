"""Bot API sandbox: a local emulator of the Telegram Bot API server.

Used by the end-to-end tests (PTB's `base_url` pointed at it over HTTP) and by
`examdesk chat`. See docs/sandbox.md.
"""

from .ratelimit import RateLimits
from .server import Sandbox, create_app
from .spec import Spec, UploadedFile, Violation, check_call, load_spec
from .state import ApiError, Fault, PaymentDeclined, RecordedCall, SandboxError
from .users import SandboxChat, SandboxUser

__all__ = [
    "ApiError",
    "Fault",
    "PaymentDeclined",
    "RateLimits",
    "RecordedCall",
    "Sandbox",
    "SandboxChat",
    "SandboxError",
    "SandboxUser",
    "Spec",
    "UploadedFile",
    "Violation",
    "check_call",
    "create_app",
    "load_spec",
]
