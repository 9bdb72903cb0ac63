"""Where a connector may connect: public addresses only, checked on the address actually connected to.

A source URL (or a redirect) can name a host that resolves to loopback, a private network, link-local
(the cloud metadata service at 169.254.169.254) or another internal address. The check cannot be done
on the host name, nor on a resolution made before the request: the name may resolve differently a
moment later (DNS rebinding). So the check is done inside the HTTP client's network backend, at the
moment it opens the TCP connection: the name is resolved once (with `loop.getaddrinfo`, which does not
block the event loop), every address is checked, and the connection is opened to one of those checked
addresses. TLS still verifies the certificate against the host name (httpcore passes it as SNI).

A connector whose connectors file says `allow_private = true` (a source on the operator's own network,
the test servers on 127.0.0.1) uses a second connection pool whose backend allows every address, so a
connection opened for it is never reused for a connector that does not allow private addresses.

Residual gaps, stated honestly: requests are not sent through an HTTP(S)_PROXY from the environment
(the proxy would resolve the name, out of our sight), and the check trusts the resolver of the machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore2
import httpx2

ALLOW_PRIVATE = "traffic_hub.allow_private"  # request extension: this request may reach private addresses

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The host resolves to an address the connector may not reach; `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address (not loopback, private, link-local, CGNAT, reserved…)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order, without blocking the event loop."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore2.ConnectError(f"cannot resolve {host!r}: {exc.strerror}") from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked address (never to the name)."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await resolve(host, port)
        refused = [address for address in addresses if not is_public(address)]
        if refused and not self._allow_private:
            raise AddressRefused(
                f"{host} resolves to a non-public address ({refused[0]}); "
                "set allow_private = true for this connector if it is meant to reach it"
            )
        last: Exception = httpcore2.ConnectError(f"{host!r} resolves to no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last = exc
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise AddressRefused("connectors do not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedPool(httpx2.AsyncHTTPTransport):
    """httpx2's transport with its connection pool on a `GuardedBackend`."""

    def __init__(self, *, allow_private: bool, limits: httpx2.Limits, trust_env: bool) -> None:
        super().__init__(limits=limits, trust_env=trust_env)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=trust_env),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allow_private),
        )


class GuardedTransport(httpx2.AsyncBaseTransport):
    """Two pools: public addresses only (the default), and any address for `ALLOW_PRIVATE` requests."""

    def __init__(self, *, limits: httpx2.Limits, trust_env: bool = True) -> None:
        self._public = _GuardedPool(allow_private=False, limits=limits, trust_env=trust_env)
        self._private = _GuardedPool(allow_private=True, limits=limits, trust_env=trust_env)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        pool = self._private if request.extensions.get(ALLOW_PRIVATE) else self._public
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        await self._public.aclose()
        await self._private.aclose()
