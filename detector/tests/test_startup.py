"""Start-up as a real process: refusals (exit status 2, clear message) and the TLS modes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
import re
import socket
import ssl

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import pytest

from tests.support import API_KEY, ServerProcess

BEYOND = ["--host", "0.0.0.0", "--engine", "tflite", "--no-warmup"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (BEYOND, {}, "requires an API key"),
        ([*BEYOND], {"HSI_API_KEY": "short-key"}, "shorter than 32"),
        ([*BEYOND], {"HSI_API_KEY": "changeme-changeme-changeme-changeme"}, "placeholder"),
        ([*BEYOND], {"HSI_API_KEY": "a" * 40}, "too few distinct"),
        ([*BEYOND], {"HSI_API_KEY": "0123456789abcdefghijklmnopqrstuvwxyz"}, "sequence"),
        ([*BEYOND], {"HSI_API_KEY": API_KEY}, "refusing plaintext"),
        (["--engine", "onnx"], {}, "--engine must be one of"),
        (["--tls", "provided"], {}, "--tls-cert and --tls-key"),
    ],
    ids=["no_key", "short", "placeholder", "repeated", "sequence", "plaintext", "engine", "tls"],
)
def test_refused_configurations_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    code, output = ServerProcess(args, env=env, workdir=tmp_path).run_to_exit()
    assert code == 2
    assert message in output
    assert "Traceback" not in output


def test_missing_model_exits_1(tmp_path: Path) -> None:
    args = ["--engine", "tflite", "--model", str(tmp_path / "none.tflite")]
    code, output = ServerProcess(args, workdir=tmp_path).run_to_exit()
    assert code == 1
    assert "cannot load TFLite model none.tflite" in output


async def test_plaintext_beyond_loopback_when_allowed_warns(tmp_path: Path) -> None:
    server = ServerProcess(
        [*BEYOND, "--allow-plaintext"], env={"HSI_API_KEY": API_KEY}, workdir=tmp_path
    ).start()
    try:
        async with aiohttp.ClientSession() as session, session.get(server.url + "/health") as r:
            assert await r.json() == {"status": "ok"}
        assert "WARNING" in server.output()
        assert "plaintext HTTP beyond loopback" in server.output()
        assert API_KEY not in server.output()
    finally:
        assert server.stop() == 0


def _fingerprint(output: str) -> str:
    match = re.search(r"TLS certificate SHA-256 fingerprint: ([0-9A-F:]{95})", output)
    assert match, output
    return match.group(1)


async def test_self_signed_tls_with_pinned_fingerprint(tmp_path: Path) -> None:
    args = ["--engine", "tflite", "--no-warmup", "--tls", "self-signed", "--tls-dir",
            str(tmp_path / "tls")]  # fmt: skip
    first = ServerProcess(args, env={"HSI_API_KEY": API_KEY}, workdir=tmp_path).start()
    try:
        pin = _fingerprint(first.output())
        pinned = aiohttp.Fingerprint(bytes.fromhex(pin.replace(":", "")))
        async with aiohttp.ClientSession(headers={"X-API-Key": API_KEY}) as session:
            async with session.get(first.url + "/health", ssl=pinned) as resp:
                assert (await resp.json())["engine"] == "tflite"
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(first.url + "/health")  # default verification refuses it
            wrong = aiohttp.Fingerprint(bytes(32))
            with pytest.raises(aiohttp.ServerFingerprintMismatch):
                await session.get(first.url + "/health", ssl=wrong)
    finally:
        assert first.stop() == 0
    assert (tmp_path / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    key_env = {"HSI_API_KEY": API_KEY}
    second = ServerProcess(args, env=key_env, workdir=tmp_path).start()  # the certificate is reused
    try:
        assert _fingerprint(second.output()) == pin
    finally:
        assert second.stop() == 0


def _issue(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey, ca: bool,
) -> x509.Certificate:  # fmt: skip
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


async def test_mtls_requires_a_client_certificate(tmp_path: Path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("test-ca", ca_key, None, ca_key, ca=True)
    server_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    _write(tmp_path / "ca", ca, ca_key)
    _write(tmp_path / "server", _issue("localhost", server_key, ca, ca_key, ca=False), server_key)
    _write(tmp_path / "client", _issue("camera", client_key, ca, ca_key, ca=False), client_key)
    args = ["--engine", "tflite", "--no-warmup", "--tls", "provided",
            "--tls-cert", str(tmp_path / "server.crt"), "--tls-key", str(tmp_path / "server.key"),
            "--tls-client-ca", str(tmp_path / "ca.crt")]  # fmt: skip
    server = ServerProcess(args, workdir=tmp_path).start()
    url = f"https://localhost:{server.port}/health"
    try:
        bare = ssl.create_default_context(cafile=tmp_path / "ca.crt")
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url, ssl=bare) as resp:
                    await resp.read()
            with_cert = ssl.create_default_context(cafile=tmp_path / "ca.crt")
            with_cert.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
            async with session.get(url, ssl=with_cert) as resp:
                assert resp.status == 200
                assert (await resp.json())["engine"] == "tflite"
    finally:
        assert server.stop() == 0


def test_addon_mode_plaintext_and_port_in_use_exits_1(tmp_path: Path) -> None:
    # The one test that passes the key as a flag (still supported): the server must warn that
    # `ps` shows it, and never echo it.
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServerProcess(
            [*BEYOND, "--network-mode", "addon", "--api-key", API_KEY],
            workdir=tmp_path,
            port=port,
        )
        code, output = server.run_to_exit()
    assert code == 1
    assert "plaintext HTTP on the add-on's internal network" in output
    assert f"cannot listen on 0.0.0.0:{port}" in output
    assert "a key given as a command-line flag is visible" in output
    assert API_KEY not in output


def test_unreadable_tls_material_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    args = ["--engine", "tflite", "--tls", "provided", "--tls-cert", str(tmp_path / "bad.pem"),
            "--tls-key", str(tmp_path / "bad.pem")]  # fmt: skip
    code, output = ServerProcess(args, workdir=tmp_path).run_to_exit()
    assert code == 2
    assert "cannot load TLS material" in output
