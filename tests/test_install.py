"""A broken install or a bug stops the run; a plain `pip install` works end to end (#18, #20)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mash import extract
from mash.cli import install_hint
from mash.cli import main as mash
from mash.demo import DEMO, demo_feeds, write_demo_config
from mash.edition import THEME_PLACEHOLDER
from mash.extract import page

REPO = Path(__file__).resolve().parents[1]
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

    def broken(*args: object, **kwargs: object) -> None:
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


# --- a plain install, end to end -------------------------------------------------------


def demo_titles() -> set[str]:
    titles = set()
    for post in DEMO.glob("posts/*/*.md"):
        front = post.read_text(encoding="utf-8").split("---\n")[1]
        titles.add(yaml.safe_load(front)["title"])
    return titles


def clean_env() -> dict[str, str]:
    """The environment without this checkout's venv or path: the new venv stands alone."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def step(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{' '.join(command)}: exit {done.returncode}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's wheel, installed into a fresh venv by the pip python3 ships with.

    No `pip install --upgrade pip`: Python 3.11's own pip (23.2) did not install
    lxml_html_clean from lxml's extra, and `make install`'s upgrade hid it (#18). pip
    uses the package indexes it is configured with on this machine. The wheel is built
    from a copy of the sources, so the build leaves nothing in the checkout. Returns
    the venv's bin/ folder.
    """
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    shutil.copytree(REPO / "mash", source / "mash", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    wheels = work / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(source)]
    step([*pip_wheel, "--quiet"], work)
    (wheel,) = wheels.glob("mash-*.whl")
    step(["/usr/bin/env", "python3", "-m", "venv", str(work / "venv")], work)
    bin_dir = work / "venv" / "bin"
    step([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)], work)
    return bin_dir


@pytest.mark.slow
def test_a_plain_install_starts_fetches_drafts_builds_and_publishes(
    installed: Path, tmp_path: Path, demo_base: str
) -> None:
    """The new editor's path on a plain install (see #20): init, feeds add, fetch,
    draft, build, site, run from a folder of their own against the demo blogs."""
    where = step([str(installed / "python"), "-c", "import mash; print(mash.__file__)"], tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(installed.parent)  # not this checkout
    mash_bin = str(installed / "mash")
    step([mash_bin, "init", "news"], tmp_path)
    news = tmp_path / "news"
    # the demo blogs live on 127.0.0.1: let fetch reach private addresses, as an editor would
    with (news / "feeds.yaml").open("a", encoding="utf-8") as config:
        config.write('fetch:\n  allow_private: ["127.0.0.1"]\n')
    feeds = demo_feeds(demo_base)
    step([mash_bin, "feeds", "add", *[f["url"] for f in feeds if not f.get("house")]], news)
    step([mash_bin, "feeds", "add", "--house", *[f["url"] for f in feeds if f.get("house")]], news)
    step([mash_bin, "fetch", "--quiet"], news)
    draft = step([mash_bin, "draft", "--month", "2026-10"], news)
    assert (news / "editions" / "2026-10.md").is_file(), draft.stdout
    # an untouched draft builds (marked a draft) but is not published: the editor writes
    edition = news / "editions" / "2026-10.md"
    front, _essay = edition.read_text(encoding="utf-8").split("\n---\n", 1)
    front = front.replace(THEME_PLACEHOLDER, "the Second Answer")
    edition.write_text(f"{front}\n---\nWhat the month's posts said.\n", encoding="utf-8")
    step([mash_bin, "build", "--month", "2026-10"], news)
    step([mash_bin, "site"], news)

    issue = json.loads((news / "output" / "2026-10" / "issue.json").read_text(encoding="utf-8"))
    assert issue["month"] == "2026-10" and issue["picks"] and issue["draft"] is False
    assert issue["theme"] == "the Second Answer"
    titles = demo_titles()
    assert {pick["title"] for pick in issue["picks"]} <= titles
    email = html.unescape((news / "output" / "2026-10" / "email.html").read_text(encoding="utf-8"))
    assert all(pick["title"] in email for pick in issue["picks"])
    assert issue["listening"]["title"] in titles
    home = (news / "output" / "site" / "index.html").read_text(encoding="utf-8")
    assert html.escape(issue["picks"][0]["url"]) in home
