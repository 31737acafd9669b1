"""Writing `[temperature.calibration]` into a gate's config file, the rest of the file kept as it is.

No TOML writer is installed, so the table is rendered by `render.table_toml` between two marker comments,
replacing the previous table (marked, or written by hand: up to the next table and the comments just
above it) and appended at the end otherwise. The new text
is parsed with the loader before it replaces the file (atomically, keeping the file's mode): a file the
gate could not load is never written, and what was written is read back and compared.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edge.config.loader import _HEADER, ConfigError, _key_path, parse_config
from edge.config.render import table_toml
from edge.config.temperature import ThermalCalibration

TABLE = "temperature.calibration"
BEGIN = f"# -- [{TABLE}]: written by `gate calibrate thermal`, which rewrites this table --"
END = f"# -- end of [{TABLE}] --"


def _without_table(lines: list[str]) -> list[str]:
    """The lines without the calibration table (between the markers, or from its header to the next)."""
    if BEGIN in lines and END in lines[lines.index(BEGIN):]:
        start = lines.index(BEGIN)
        end = lines.index(END, start)
        return lines[:start] + lines[end + 1:]
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m and not line.lstrip().startswith("[[") and _key_path(m.group(1)) == ("temperature", "calibration"):
            j = next((k for k in range(i + 1, len(lines)) if _HEADER.match(lines[k])), len(lines))
            while j > i + 1 and (not lines[j - 1].strip() or lines[j - 1].lstrip().startswith("#")):
                j -= 1  # the comments just above the next table are that table's
            return lines[:i] + lines[j:]
    return lines


def calibrated_text(text: str, cal: ThermalCalibration) -> str:
    """`text` (a config file) with its calibration table replaced by `cal`'s."""
    kept = "\n".join(_without_table(text.split("\n"))).rstrip("\n")
    block = f"{BEGIN}\n{table_toml(cal, TABLE)}{END}\n"
    return f"{kept}\n\n{block}" if kept else block


def write_calibration(path: Path, cal: ThermalCalibration) -> None:
    """Replace the calibration table of the config file at `path`; ConfigError if it cannot be done."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode & 0o7777
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror or exc}"]) from exc
    try:
        parse_config(text, path)
    except ConfigError as exc:
        raise ConfigError(path, [f"the file does not load now ({'; '.join(exc.problems)}): fix that first "
                                 "(`gate config check FILE`)"]) from exc
    new = calibrated_text(text, cal)
    try:
        loaded = parse_config(new, path).temperature.calibration
    except ConfigError as exc:
        raise ConfigError(path, [f"with the calibration added the file would not load ({'; '.join(exc.problems)}); "
                                 f"remove other [{TABLE}] keys from it and run the command again"]) from exc
    if loaded != cal:
        raise ConfigError(path, [f"the [{TABLE}] table would not read back as written: check the file by hand"])
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(new)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(path, [f"cannot write: {exc.strerror or exc}"]) from exc
