"""deploy/nginx/nginx.conf in front of a real serve: it loads, proxies, and answers in JSON."""

from __future__ import annotations

import datetime
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.adversarial.support import (
    HOST,
    ROOT,
    Served,
    free_port,
    serve,
    split_response,
    wait_until,
)

CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
pytestmark = pytest.mark.skipif(not shutil.which("nginx"), reason="needs nginx")


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    crt, pem = directory / "tls.crt", directory / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, pem


def _local_conf(directory: Path, upstream: int, https: int, http: int) -> Path:
    """The shipped file with only ports, certificate paths and runtime paths changed."""
    crt, key = _self_signed(directory)
    text = CONF.read_text()
    for old, new in [
        ("server 127.0.0.1:8080", f"server 127.0.0.1:{upstream}"),
        ("listen 443 ssl http2;", f"listen {HOST}:{https} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
        ("listen 80;", f"listen {HOST}:{http};"),
        ("listen [::]:80;", ""),
        ("/etc/nginx/tls/tls.crt", str(crt)),
        ("/etc/nginx/tls/tls.key", str(key)),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    temp = directory / "temp"
    temp.mkdir()
    runtime = (
        f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
        if "pid " not in text
        else ""
    )
    text = runtime + text.replace(
        "http {",
        "http {\n"
        + "".join(
            f"    {kind}_temp_path {temp}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
        1,
    )
    path = directory / "nginx.conf"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, int]]:
    tmp = tmp_path_factory.mktemp("nginx")
    with serve(tmp, {"CDS_AUTH": "disabled"}) as served:
        https = free_port()
        conf = _local_conf(tmp, served.port, https, free_port())
        command = ["nginx", "-p", str(tmp), "-c", str(conf)]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen([*command, "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        try:
            wait_until(
                lambda: _exchange(
                    https, b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                ).startswith(b"HTTP/1.1 200"),
                20,
                proc,
            )
            yield served, https
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _exchange(port: int, data: bytes) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((HOST, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as sock,
    ):
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_the_service_answers_through_the_proxy(front: tuple[Served, int]) -> None:
    _, port = front
    status, headers, _body = split_response(
        _exchange(port, b"GET /cds-services HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    )
    assert status == 200
    assert "strict-transport-security" in headers


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (
            b"POST /cds-services/x HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
            b"Content-Length: 40000000\r\nConnection: close\r\n\r\n",
            413,
        ),
        (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 414),
        (
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: "
            + b"b" * 20_000
            + b"\r\nConnection: close\r\n\r\n",
            400,
        ),
    ],
    ids=["body-too-large", "uri-too-long", "header-too-large"],
)
def test_the_proxys_own_refusals_are_json(
    front: tuple[Served, int], raw: bytes, status: int
) -> None:
    _, port = front
    got, headers, body = split_response(_exchange(port, raw))
    assert got == status
    assert headers["content-type"] == "application/json"
    assert orjson.loads(body)["error"]["status"] == status
