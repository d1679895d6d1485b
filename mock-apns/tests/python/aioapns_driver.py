"""Drives the real aioapns 4.0 client against mock-apns and prints what it got back.

Called by `mock-apns/tests/aioapns_interop.rs`. Input: one JSON document on stdin:

    {"port": 1234, "sandbox": true, "ca_file": "...", "topic": "com.example.pushbench",
     "auth": {"mode": "token", "key_file": "...", "key_id": "...", "team_id": "..."}
           | {"mode": "cert", "cert_file": "...", "key_file": "..."},
     "cases": [{"name": "...", "device_token": "...", "jwt": "valid", "payload_bytes": 200,
                "push_type": "voip", "topic": "...", "priority": 10, "collapse_key": "...",
                "time_to_live": 60, "sends": 1}]}

`jwt` (token mode only) picks the provider token: "valid" (aioapns's own signer), "expired"
(aioapns's signer with a clock two hours behind), "bad_signature" (ES256 with a key the server
does not know), "none" (unsecured JWT), "hs256", or "rotate" (a valid token, then a second valid
token with a different iat on the same connection). Each case gets its own client, hence its own
connection. Output: one JSON line per case with `name` and `results` (one per send):
`{"status", "reason", "apns_id", "timestamp"}`.

aioapns dials `APNS_SERVER:APNS_PORT`; the driver keeps that host name for SNI and the `host`
header and only redirects the TCP connection to 127.0.0.1:port, like a DNS override would.
"""

import asyncio
import functools
import json
import ssl
import sys
import tempfile
import time
import types

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization

import aioapns.connection as connection
from aioapns import APNs, NotificationRequest, PushType
from aioapns.connection import AuthorizationHeaderProvider, JWTAuthorizationHeaderProvider


class FixedHeaders(AuthorizationHeaderProvider):
    """Hands out the given `authorization` values in turn, repeating the last one."""

    def __init__(self, values):
        self.values = list(values)

    def get_header(self):
        if len(self.values) > 1:
            return self.values.pop(0)
        return self.values[0]


class SkewedClock:
    """Stands in for the `time` module inside aioapns.connection: a clock `offset` seconds off."""

    def __init__(self, offset):
        self.offset = offset

    def time(self):
        return time.time() + self.offset


def bearer(token):
    return f"bearer {token}"


def auth_provider(auth, kind, key_pem):
    """The authorization header provider for one case, or None to keep aioapns's own."""
    now = int(time.time())
    claims = {"iss": auth["team_id"], "iat": now}
    kid = {"kid": auth["key_id"]}
    if kind in ("valid", "expired"):
        return None
    if kind == "bad_signature":
        stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return FixedHeaders([bearer(jwt.encode(claims, stranger, algorithm="ES256", headers=kid))])
    if kind == "none":
        return FixedHeaders([bearer(jwt.encode(claims, None, algorithm="none", headers=kid))])
    if kind == "hs256":
        return FixedHeaders(
            [bearer(jwt.encode(claims, "not-an-apple-key", algorithm="HS256", headers=kid))]
        )
    if kind == "rotate":
        first = jwt.encode(claims, key_pem, algorithm="ES256", headers=kid)
        second = jwt.encode(
            {"iss": auth["team_id"], "iat": now - 1}, key_pem, algorithm="ES256", headers=kid
        )
        return FixedHeaders([bearer(first), bearer(second)])
    raise ValueError(f"unknown jwt kind {kind!r}")


def payload_of_size(size):
    """A JSON object whose compact UTF-8 encoding (as aioapns sends it) is exactly `size` bytes."""
    base = {"aps": {"alert": "pushbench"}, "pad": ""}
    empty = len(json.dumps(base, ensure_ascii=False).encode())
    if size < empty:
        raise ValueError(f"payload of {size} bytes is below the minimum {empty}")
    base["pad"] = "x" * (size - empty)
    assert len(json.dumps(base, ensure_ascii=False).encode()) == size
    return base


def redirect(pool, port, provider):
    """Makes the pool dial 127.0.0.1:port while keeping the Apple host name for SNI."""
    server_name = pool.protocol_class.APNS_SERVER

    async def _create_connection(self, factory):
        if provider is not None:
            # The key pool's factory is partial(protocol, topic, loop, on_lost, provider).
            factory = functools.partial(factory.func, *factory.args[:3], provider)
        _, protocol = await self.loop.create_connection(
            protocol_factory=factory,
            host="127.0.0.1",
            port=port,
            ssl=self.ssl_context,
            server_hostname=server_name,
        )
        return protocol

    pool._create_connection = types.MethodType(_create_connection, pool)


async def run_case(cfg, case, key_pem, combined_cert):
    ctx = ssl.create_default_context(cafile=cfg["ca_file"])
    auth = cfg["auth"]
    topic = case.get("topic", cfg.get("topic"))
    if auth["mode"] == "token":
        client = APNs(
            key=key_pem,
            key_id=auth["key_id"],
            team_id=auth["team_id"],
            topic=topic,
            use_sandbox=cfg["sandbox"],
            ssl_context=ctx,
            max_connections=1,
            max_connection_attempts=1,
        )
        provider = auth_provider(auth, case.get("jwt", "valid"), key_pem)
    else:
        client = APNs(
            client_cert=combined_cert,
            topic=topic,
            use_sandbox=cfg["sandbox"],
            ssl_context=ctx,
            max_connections=1,
            max_connection_attempts=1,
        )
        provider = None
    redirect(client.pool, cfg["port"], provider)

    saved_time = connection.time
    if case.get("jwt") == "expired":
        connection.time = SkewedClock(-2 * 3600)
    results = []
    try:
        for _ in range(case.get("sends", 1)):
            push_type = case.get("push_type")
            request = NotificationRequest(
                device_token=case["device_token"],
                message=payload_of_size(case.get("payload_bytes", 64)),
                time_to_live=case.get("time_to_live"),
                priority=case.get("priority"),
                collapse_key=case.get("collapse_key"),
                push_type=PushType(push_type) if push_type else None,
            )
            try:
                result = await asyncio.wait_for(client.send_notification(request), 10)
                results.append(
                    {
                        "status": int(result.status),
                        "reason": result.description,
                        "apns_id": result.notification_id,
                        "sent_apns_id": request.notification_id,
                        "timestamp": result.timestamp,
                    }
                )
            except Exception as e:  # the Rust side reports it with the case name
                results.append({"error": f"{type(e).__name__}: {e}"})
    finally:
        connection.time = saved_time
        client.pool.close()
    return results


async def main():
    cfg = json.load(sys.stdin)
    auth = cfg["auth"]
    key_pem = None
    combined_cert = None
    if auth["mode"] == "token":
        with open(auth["key_file"]) as f:
            key_pem = f.read()
    else:
        # aioapns loads the client certificate with load_cert_chain(cert_file): one file with both.
        combined = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
        for path in (auth["cert_file"], auth["key_file"]):
            with open(path) as f:
                combined.write(f.read())
        combined.close()
        combined_cert = combined.name
    for case in cfg["cases"]:
        results = await run_case(cfg, case, key_pem, combined_cert)
        print(json.dumps({"name": case["name"], "results": results}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
