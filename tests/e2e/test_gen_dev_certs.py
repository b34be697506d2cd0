"""scripts/gen-dev-certs run as a user would: files on disk and the lines it prints."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from securechat.tls import cert_der_from_pem_file, fingerprint_colons, fingerprint_sha256

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gen-dev-certs"


def gen_dev_certs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("e2e") / "certs"
    result = gen_dev_certs("--out", str(out), "--client", "alice")
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_script_writes_ca_server_and_client_files(first_run: tuple[Path, str]) -> None:
    out, _ = first_run
    for name in ["ca.pem", "ca.key", "server.pem", "server.key"]:
        assert (out / name).is_file(), name
    assert (out / "clients" / "alice.pem").is_file()
    for key in [out / "ca.key", out / "server.key", out / "clients" / "alice.key"]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_script_prints_the_ca_path_and_both_fingerprint_forms(first_run: tuple[Path, str]) -> None:
    out, stdout = first_run
    der = cert_der_from_pem_file(out / "server.pem")
    colons, bare = fingerprint_colons(der), fingerprint_sha256(der)
    lines = [line.strip() for line in stdout.splitlines()]
    assert f"CA certificate:     {out / 'ca.pem'}" in stdout
    assert colons in lines
    assert bare in lines
    assert f"irssi:        /connect -tls -tls_cafile {out / 'ca.pem'} localhost 6697" in lines
    assert f"irssi:        /connect -tls -tls_pinned_cert {colons} localhost 6697" in lines
    assert f"WeeChat ≥ 4:  /server add sc localhost/6697 -tls -tls_fingerprint={bare}" in lines
    assert f"WeeChat 3.x:  /server add sc localhost/6697 -ssl -ssl_fingerprint={bare}" in lines


def test_script_run_again_refuses_in_one_line_with_exit_2(first_run: tuple[Path, str]) -> None:
    out, _ = first_run
    before = (out / "server.pem").read_bytes()
    result = gen_dev_certs("--out", str(out))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"securechat certs: error: {out / 'server.pem'} already exists; use --force to replace it"
    )
    assert "Traceback" not in result.stderr
    assert (out / "server.pem").read_bytes() == before
