"""securechat.regular_files: operator-named files are read only when regular, never blocking."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from securechat.regular_files import FileRefused, read_regular_file


def test_a_regular_file_is_read_with_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "motd.txt"
    path.write_bytes(b"hello\n")
    path.chmod(0o640)
    read = read_regular_file(path)
    assert read.data == b"hello\n"
    assert read.info.st_mode & 0o777 == 0o640


@pytest.mark.timeout(20)
def test_a_fifo_is_refused_at_once_even_with_no_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "cert.pem"
    os.mkfifo(fifo)
    with pytest.raises(FileRefused, match=r"^is a named pipe \(FIFO\), not a regular file$"):
        read_regular_file(fifo)


@pytest.mark.parametrize(
    ("path", "kind"), [("/dev/zero", "a character device"), ("/", "a directory")]
)
def test_devices_and_directories_are_refused(path: str, kind: str) -> None:
    with pytest.raises(FileRefused, match=f"^is {kind}, not a regular file$"):
        read_regular_file(Path(path))


def test_a_unix_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        with pytest.raises(FileRefused, match=r"^is a socket"):
            read_regular_file(path)


def test_a_file_over_the_bound_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_bytes(b"#" * 101)
    with pytest.raises(FileRefused, match="is 101 bytes, more than the 100 allowed"):
        read_regular_file(path, max_bytes=100)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileRefused, match=r"^does not exist$"):
        read_regular_file(tmp_path / "nope")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_gives_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(FileRefused, match="cannot be read: Permission denied"):
        read_regular_file(path)
