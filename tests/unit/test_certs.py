"""securechat.certs: what the dev CA, server and client certificates contain, and file safety."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

from securechat import cert_names, certs
from securechat.certs import CertsError, DevCertResult, ensure_dev_certs, generate_dev_certs
from securechat.tls import (
    cert_der_from_pem_file,
    client_context,
    fingerprint_colons,
    fingerprint_sha256,
    server_context,
)
from tests.unit.test_tls import loopback_handshake

# --------------------------------------------------------------------------- helpers


def load_chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def load_cert(path: Path) -> x509.Certificate:
    return load_chain(path)[0]


def san_values(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses as text) of a certificate."""
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    return sans.get_values_for_type(x509.DNSName), ips


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(directory: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> DevCertResult:
    """One full generation shared by the read-only tests (key generation is cheap, but why)."""
    out = tmp_path_factory.mktemp("shared") / "certs"
    return generate_dev_certs(out, sans=["chat.example.test", "10.1.2.3"], clients=["alice"])


# --------------------------------------------------------------------------- what is created


def test_generate_writes_ca_server_and_client_files(generated: DevCertResult) -> None:
    out = generated.ca_cert.parent
    expected = {
        out / "ca.pem",
        out / "ca.key",
        out / "server.pem",
        out / "server.key",
        out / "clients" / "alice.pem",
        out / "clients" / "alice.key",
    }
    assert set(generated.created) == expected
    assert all(path.is_file() for path in expected)


def test_server_certificate_names_localhost_loopback_and_this_machine(
    generated: DevCertResult,
) -> None:
    dns, ips = san_values(load_cert(generated.server_cert))
    assert "localhost" in dns
    assert {"127.0.0.1", "::1"} <= set(ips)
    hostname = socket.gethostname().lower()
    if cert_names.is_dns_name(hostname):
        assert hostname in dns


def test_san_option_adds_ips_as_ip_addresses_and_names_as_dns_names(
    generated: DevCertResult,
) -> None:
    dns, ips = san_values(load_cert(generated.server_cert))
    assert "chat.example.test" in dns
    assert "10.1.2.3" in ips
    assert "10.1.2.3" not in dns


def test_bracketed_ipv6_san_becomes_an_ip_address(tmp_path: Path) -> None:
    result = generate_dev_certs(tmp_path / "c", sans=["[fd00::5]", "Upper.Example.TEST."])
    dns, ips = san_values(load_cert(result.server_cert))
    assert "fd00::5" in ips
    assert "upper.example.test" in dns


def test_server_pem_holds_the_leaf_followed_by_the_ca(generated: DevCertResult) -> None:
    leaf, issuer = load_chain(generated.server_cert)
    assert issuer == load_cert(generated.ca_cert)
    leaf.verify_directly_issued_by(issuer)


def test_server_chain_passes_rfc5280_verification_for_each_name(generated: DevCertResult) -> None:
    # cryptography's verifier applies RFC 5280 and CA/Browser Forum profile checks
    # (critical basicConstraints, keyUsage, serverAuth EKU, AKI/SKI, SAN matching).
    store = Store([load_cert(generated.ca_cert)])
    leaf = load_cert(generated.server_cert)
    names: list[x509.verification.Subject] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("chat.example.test"),
    ]
    for name in names:
        verifier = PolicyBuilder().store(store).build_server_verifier(name)
        chain = verifier.verify(leaf, [])
        assert chain[-1] == load_cert(generated.ca_cert)


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])
def test_server_certificate_completes_a_real_tls_handshake(
    generated: DevCertResult, server_hostname: str
) -> None:
    server = server_context(generated.server_cert, generated.server_key)
    client = client_context(ca=generated.ca_cert)
    outcome = loopback_handshake(server, client, server_hostname=server_hostname)
    assert outcome.client_error is None
    assert outcome.server_cert_seen_by_client == cert_der_from_pem_file(generated.server_cert)


def test_ca_is_a_pathlen_zero_ca_valid_ten_years(generated: DevCertResult) -> None:
    ca = load_cert(generated.ca_cert)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert ca.not_valid_after_utc - ca.not_valid_before_utc == timedelta(days=3650)


def test_server_certificate_is_an_end_entity_for_server_auth_valid_825_days(
    generated: DevCertResult,
) -> None:
    leaf = load_cert(generated.server_cert)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=825)


def test_leaf_authority_key_id_matches_ca_subject_key_id(generated: DevCertResult) -> None:
    ca, leaf = load_cert(generated.ca_cert), load_cert(generated.server_cert)
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest


def test_serial_numbers_are_random_and_large(generated: DevCertResult) -> None:
    ca, leaf = load_cert(generated.ca_cert), load_cert(generated.server_cert)
    assert ca.serial_number != leaf.serial_number
    assert leaf.serial_number.bit_length() > 64  # CA/B Forum BR 7.1: 64+ bits of entropy


def test_result_fingerprints_are_those_of_the_server_leaf(generated: DevCertResult) -> None:
    der = cert_der_from_pem_file(generated.server_cert)
    assert generated.server_fingerprint_sha256 == fingerprint_sha256(der)
    assert generated.server_fingerprint_colons == fingerprint_colons(der)


# --------------------------------------------------------------------------- client certificates


def test_client_certificate_is_for_client_auth_and_signed_by_the_ca(
    generated: DevCertResult,
) -> None:
    (alice,) = generated.clients
    cert = load_cert(alice.cert)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert.verify_directly_issued_by(load_cert(generated.ca_cert))
    assert alice.fingerprint_sha256 == fingerprint_sha256(cert_der_from_pem_file(alice.cert))


def test_client_certificate_passes_rfc5280_client_verification(generated: DevCertResult) -> None:
    verification = pytest.importorskip("cryptography.x509.verification")
    if not hasattr(verification, "ExtensionPolicy"):
        pytest.skip("needs cryptography >= 45 for ExtensionPolicy")
    (alice,) = generated.clients
    cert = load_cert(alice.cert)
    # The web PKI profile wants a subjectAltName on every leaf; an IRC client identity has
    # no host name, and RFC 5280 4.2.1.6 only requires one when the subject is empty.
    leaf_policy = verification.ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store([load_cert(generated.ca_cert)]))
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=leaf_policy
        )
        .build_client_verifier()
    )
    assert verifier.verify(cert, []).chain == [cert, load_cert(generated.ca_cert)]


def test_client_certificate_is_accepted_by_a_server_trusting_the_ca(
    generated: DevCertResult,
) -> None:
    (alice,) = generated.clients
    server = server_context(
        generated.server_cert, generated.server_key, client_ca=generated.ca_cert
    )
    client = client_context(ca=generated.ca_cert, cert=alice.cert, key=alice.key)
    outcome = loopback_handshake(server, client)
    assert outcome.client_error is None
    assert outcome.client_cert_seen_by_server == cert_der_from_pem_file(alice.cert)


def test_adding_a_client_later_reuses_the_ca_and_keeps_the_server(tmp_path: Path) -> None:
    first = generate_dev_certs(tmp_path)
    before = snapshot(tmp_path)
    second = generate_dev_certs(tmp_path, clients=["bob"])
    assert set(second.created) == {
        tmp_path / "clients" / "bob.pem",
        tmp_path / "clients" / "bob.key",
    }
    assert {path: snapshot(tmp_path)[path] for path in before} == before
    assert second.server_fingerprint_sha256 == first.server_fingerprint_sha256
    load_cert(tmp_path / "clients" / "bob.pem").verify_directly_issued_by(load_cert(first.ca_cert))


def test_clients_without_a_ca_create_one(tmp_path: Path) -> None:
    result = generate_dev_certs(tmp_path, clients=["carol"])
    assert result.ca_cert.is_file()
    load_cert(result.clients[0].cert).verify_directly_issued_by(load_cert(result.ca_cert))


@pytest.mark.parametrize("name", ["", "../evil", "a/b", ".hidden", "with space", "é", "x" * 65])
def test_bad_client_name_is_refused_before_writing_anything(tmp_path: Path, name: str) -> None:
    with pytest.raises(CertsError, match="is not allowed: use 1 to 64 letters, digits"):
        generate_dev_certs(tmp_path / "out", clients=[name])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("san", ["foo_bar", "-bad.example", "", "a..b", "1.2.3.4.5"])
def test_bad_san_is_refused_with_one_clear_error(tmp_path: Path, san: str) -> None:
    with pytest.raises(CertsError, match="is neither an IP address nor a DNS name"):
        generate_dev_certs(tmp_path / "out", sans=[san])


# --------------------------------------------------------------------------- file safety


def test_key_files_are_private_and_the_new_directory_is_0700(generated: DevCertResult) -> None:
    out = generated.ca_cert.parent
    keys = [generated.ca_key, generated.server_key, *(c.key for c in generated.clients)]
    assert [mode_of(key) for key in keys] == [0o600] * len(keys)
    assert mode_of(out) == 0o700
    assert mode_of(out / "clients") == 0o700


def test_certificates_are_world_readable_but_not_writable(generated: DevCertResult) -> None:
    assert mode_of(generated.server_cert) & 0o022 == 0
    assert mode_of(generated.server_cert) & 0o400


def test_existing_files_are_not_overwritten_without_force(tmp_path: Path) -> None:
    generate_dev_certs(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(CertsError, match=r"server\.pem already exists; use --force"):
        generate_dev_certs(tmp_path)
    assert snapshot(tmp_path) == before


def test_force_replaces_the_server_certificate_and_keeps_the_ca(tmp_path: Path) -> None:
    first = generate_dev_certs(tmp_path)
    ca_before = first.ca_cert.read_bytes()
    first.server_key.chmod(0o644)  # even a loosened key comes back 0600
    second = generate_dev_certs(tmp_path, force=True)
    assert second.server_fingerprint_sha256 != first.server_fingerprint_sha256
    assert second.ca_cert.read_bytes() == ca_before
    assert mode_of(second.server_key) == 0o600
    assert not list(tmp_path.glob(".*.tmp"))


def test_force_replaces_an_existing_client_certificate(tmp_path: Path) -> None:
    first = generate_dev_certs(tmp_path, clients=["dave"])
    with pytest.raises(CertsError, match=r"dave\.pem already exists"):
        generate_dev_certs(tmp_path, clients=["dave"])
    second = generate_dev_certs(tmp_path, clients=["dave"], force=True)
    assert second.clients[0].fingerprint_sha256 != first.clients[0].fingerprint_sha256


def test_half_a_ca_is_reported_not_replaced(tmp_path: Path) -> None:
    generate_dev_certs(tmp_path)
    (tmp_path / "ca.key").unlink()
    with pytest.raises(CertsError, match=r"ca\.pem exists but .*ca\.key does not"):
        generate_dev_certs(tmp_path, force=True)


def test_ca_key_that_does_not_match_is_reported(tmp_path: Path) -> None:
    generate_dev_certs(tmp_path)
    (tmp_path / "ca.key").write_bytes((tmp_path / "server.key").read_bytes())
    with pytest.raises(CertsError, match=r"ca\.key does not match the certificate"):
        generate_dev_certs(tmp_path, clients=["erin"])


# --------------------------------------------------------------------------- ensure_dev_certs


def test_ensure_dev_certs_creates_ca_and_server_when_missing(tmp_path: Path) -> None:
    result = ensure_dev_certs(tmp_path / "certs")
    assert set(result.created) == {
        result.ca_cert,
        result.ca_key,
        result.server_cert,
        result.server_key,
    }


def test_ensure_dev_certs_is_a_no_op_when_files_exist(tmp_path: Path) -> None:
    first = generate_dev_certs(tmp_path)
    before = snapshot(tmp_path)
    again = ensure_dev_certs(tmp_path)
    assert again.created == ()
    assert snapshot(tmp_path) == before
    assert again.server_fingerprint_colons == first.server_fingerprint_colons


def test_ensure_dev_certs_makes_only_the_missing_server_from_the_existing_ca(
    tmp_path: Path,
) -> None:
    first = generate_dev_certs(tmp_path)
    ca_before = first.ca_cert.read_bytes()
    first.server_cert.unlink()
    first.server_key.unlink()
    again = ensure_dev_certs(tmp_path)
    assert set(again.created) == {again.server_cert, again.server_key}
    assert again.ca_cert.read_bytes() == ca_before


def test_ensure_dev_certs_refuses_a_server_whose_ca_is_gone(tmp_path: Path) -> None:
    generate_dev_certs(tmp_path)
    (tmp_path / "ca.pem").unlink()
    (tmp_path / "ca.key").unlink()
    with pytest.raises(CertsError, match=r"server\.pem exists but its CA"):
        ensure_dev_certs(tmp_path)


# --------------------------------------------------------------------------- command line


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="securechat certs")
    certs.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_defaults_to_the_certs_directory() -> None:
    args = parse([])
    assert args.out == Path("certs")
    assert (args.san, args.client, args.force, args.only_missing) == ([], [], False, False)


def test_run_prints_fingerprints_and_client_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = certs.run(parse(["--out", str(tmp_path), "--client", "alice"]))
    out = capsys.readouterr().out
    der = cert_der_from_pem_file(tmp_path / "server.pem")
    assert code == 0
    assert f"/connect -tls -tls_cafile {(tmp_path / 'ca.pem').resolve()} localhost 6697" in out
    assert f"-tls_pinned_cert {fingerprint_colons(der)} localhost 6697" in out
    assert f"/server add sc localhost/6697 -tls -tls_fingerprint={fingerprint_sha256(der)}" in out


def test_run_prints_both_weechat_forms_labelled_and_says_use_localhost_for_irssi(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """WeeChat 3.x ignores -tls silently (plaintext); irssi cannot verify 127.0.0.1."""
    certs.run(parse(["--out", str(tmp_path)]))
    out = capsys.readouterr().out
    bare = fingerprint_sha256(cert_der_from_pem_file(tmp_path / "server.pem"))
    assert f"WeeChat ≥ 4:  /server add sc localhost/6697 -tls -tls_fingerprint={bare}" in out
    assert f"WeeChat 3.x:  /server add sc localhost/6697 -ssl -ssl_fingerprint={bare}" in out
    assert "/server add sc localhost/6697 -ssl\n" in out
    assert "use localhost, not 127.0.0.1" in out


def test_force_says_how_a_running_server_loads_the_new_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certs.run(parse(["--out", str(tmp_path)]))
    assert "SIGHUP" not in capsys.readouterr().out  # a first run replaces nothing
    certs.run(parse(["--out", str(tmp_path), "--force"]))
    assert (
        "SIGHUP (kill -HUP <pid>), or as an operator type /quote REHASH" in capsys.readouterr().out
    )


def test_importing_certs_raises_no_deprecation_warning() -> None:
    """cryptography warns (DSA is deprecated) as soon as its dsa module is named."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import securechat.certs, securechat.cli"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_run_reports_a_bad_client_name_in_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = certs.run(parse(["--out", str(tmp_path), "--client", "bad/name"]))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.startswith("securechat certs: error: client name 'bad/name'")
    assert captured.err.count("\n") == 1


def test_run_reports_an_unwritable_directory_in_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = certs.run(parse(["--out", str(blocker / "certs")]))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("securechat certs: error: ")
    assert "Traceback" not in err


def test_run_only_missing_does_nothing_when_files_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate_dev_certs(tmp_path)
    before = snapshot(tmp_path)
    assert certs.run(parse(["--out", str(tmp_path), "--only-missing"])) == 0
    assert capsys.readouterr().out.startswith("Nothing to do")
    assert snapshot(tmp_path) == before


def test_run_only_missing_rejects_generation_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certs.run(parse(["--out", str(tmp_path), "--only-missing", "--force"])) == 2
    assert "cannot be combined" in capsys.readouterr().err
