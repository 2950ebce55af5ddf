"""What the commands that talk to a running gateway share: one client, one way to fail."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..protocol import _json
from .options import CliError, Shared

if TYPE_CHECKING:
    from ..client import DeviceIdentity, GatewayClient

__all__ = ["device_identity", "make_client", "print_json", "run_remote"]

T = TypeVar("T")


def print_json(obj: Any, compact: bool) -> None:
    print(_json.dumps_str(obj) if compact else _json.dumps_pretty(obj), flush=True)


def device_identity(sh: Shared, name: str = "device.pem") -> DeviceIdentity:
    from ..client import DeviceIdentity

    return DeviceIdentity.load_or_create(Path(sh.data_dir) / "identity" / name)


def make_client(sh: Shared, **kw: Any) -> GatewayClient:
    from ..client import GatewayClient

    return GatewayClient(sh.url, **{**sh.client_options(), **kw})


def run_remote(sh: Shared, go: Callable[[], Awaitable[T]], *, json_errors: bool = True) -> T:
    """Run ``go`` on a fresh loop; a refused request prints its error (JSON, or one line without
    ``json_errors``) and exits 1, an unreachable gateway is one line on stderr and exit 1."""
    from ..client import GatewayError

    url = sh.url  # validated before anything connects
    try:
        return asyncio.run(_awaited(go))
    except GatewayError as exc:
        if not json_errors:
            raise CliError(f"{exc.message} ({exc.detail_code or exc.code})") from None
        err = {"ok": False, "error": {"code": str(exc.code), "message": exc.message, "details": exc.details}}
        print_json(err, sh.json)
        raise SystemExit(1) from None
    except ssl.SSLCertVerificationError as exc:
        raise CliError(
            f"cannot reach {url}: certificate verify failed ({exc.verify_message or exc}): give the CA with "
            "--ca-file (or SSL_CERT_FILE), "
            "or pin the certificate with --tls-fingerprint"
        ) from None
    except (OSError, TimeoutError) as exc:
        raise CliError(f"cannot reach {url}: {exc or type(exc).__name__}") from None


async def _awaited(go: Callable[[], Awaitable[T]]) -> T:
    return await go()
