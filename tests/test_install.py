"""A broken install or a bug stops the run; a plain `pip install` works end to end (#18, #20)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mash import extract
from mash.cli import install_hint
from mash.cli import main as mash
from mash.demo import write_demo_config
from mash.extract import page

LXML_HTML_CLEAN_GONE = "raise ImportError('lxml_html_clean is not installed (a test stands in)')\n"


def run_mash(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mash.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_a_missing_module_stops_the_fetch_and_says_how_to_repair_it(
    tmp_path: Path, demo_base: str
) -> None:
    """What pip 23.2 left: no lxml_html_clean, so trafilatura cannot import (see #18).

    The run used to carry on, calling every article page "could not be fetched" and
    storing the feeds' summaries for good. Here a package on PYTHONPATH shadows the
    installed lxml_html_clean and fails to import, in mash and in its workers.
    """
    stub = tmp_path / "stub" / "lxml_html_clean"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(LXML_HTML_CLEAN_GONE)
    config = str(write_demo_config(tmp_path / "ws", demo_base))
    broken = {**os.environ, "PYTHONPATH": str(stub.parent)}

    run = run_mash("--config", config, "fetch", "--quiet", env=broken)
    assert run.returncode == 1, run.stderr
    assert "mash: install is broken: lxml.html.clean module is now a separate project" in run.stderr
    assert "run `pip install 'lxml_html_clean" in run.stderr
    assert "the feed text is used" not in run.stderr
    assert "Traceback" not in run.stderr

    repaired = run_mash("--config", config, "fetch", "--quiet")
    assert repaired.returncode == 0, repaired.stderr
    extracted = re.search(r"(\d+) pages extracted", repaired.stderr)
    assert extracted and int(extracted.group(1)) > 0, repaired.stderr  # nothing was given up


def test_a_bug_in_extraction_stops_the_fetch_naming_the_page(
    tmp_path: Path,
    demo_base: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Only a page's own problems fall back to the feed text; a bug is not one (see #18)."""

    def broken(tree: object, url: str | None) -> None:
        raise TypeError("an injected bug")

    monkeypatch.setattr(extract, "_POOL_MIN_JOBS", 10**6)  # in this process
    monkeypatch.setattr(page, "extract_article_body", broken)
    config = str(write_demo_config(tmp_path / "ws", demo_base))
    assert mash(["--config", config, "fetch", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert re.search(
        r"mash: internal error while extracting the page http://127\.0\.0\.1:\d+/\S+: "
        r"TypeError: an injected bug; this is a bug in mash: run again with --debug",
        err,
    ), err
    assert "the feed text is used" not in err


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (
            ModuleNotFoundError("No module named 'trafilatura.xml'", name="trafilatura.xml"),
            "run `pip install 'trafilatura",
        ),
        (ImportError("No module named nh3", name="nh3"), "run `pip install 'nh3"),
        (
            ModuleNotFoundError("No module named 'nothing_we_need'", name="nothing_we_need"),
            "reinstall mash with its dependencies",
        ),
    ],
)
def test_install_hint_names_the_requirement(error: ImportError, hint: str) -> None:
    assert install_hint(error).startswith(hint)
