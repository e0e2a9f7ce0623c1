"""`mash bounces import` on real mailboxes: mbox, Maildir, and Dovecot over IMAPS (#16)."""

from __future__ import annotations

import imaplib
import mailbox as stdlib_mailbox
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mash import cli
from mash.mailbox import import_bounces, message_key, read_maildir
from mash.records import Bounce
from mash.store import open_store
from mash.subscribers import Subscriber

DATA = Path(__file__).parent / "data" / "bounces"
BOUNCES = ("postfix-user-unknown.eml", "exim-mailbox-full.eml", "arf-abuse.eml")
OTHERS = ("out-of-office.eml", "reader-reply.eml")
EXPECTED_LINES = {
    "jane.doe@example.com\t5.1.1\thard",
    "omar@example.net\t5.2.2\tsoft",
    "reader.one@yahoo.example\t-\tcomplaint",
}
PASSWORD = "s3cret-for-tests"


def _config(folder: Path, port: int = 993) -> Path:
    path = folder / "feeds.yaml"
    path.write_text(
        "feeds: []\n"
        "bounces:\n"
        "  host: 127.0.0.1\n"
        f"  port: {port}\n"
        "  user: bounce\n"
        "  password_env: MASH_TEST_BOUNCES_PASSWORD\n",
        encoding="utf-8",
    )
    return path


def _run(capsys, config: Path, *where: str) -> tuple[int, set[str], str]:
    status = cli.main(["--config", str(config), "bounces", "import", *where])
    out, err = capsys.readouterr()
    lines = {"\t".join(line.split("\t")[:3]) for line in out.splitlines()}
    return status, lines, err


# --- local mailboxes ----------------------------------------------------------------------


def test_mbox_is_read_once_and_non_bounces_are_counted(tmp_path, capsys, database_env):
    box = stdlib_mailbox.mbox(str(tmp_path / "bounces.mbox"))
    for name in BOUNCES + OTHERS:
        box.add((DATA / name).read_bytes())
    box.close()
    before = (tmp_path / "bounces.mbox").read_bytes()
    config = _config(tmp_path)

    status, lines, err = _run(capsys, config, "--mbox", str(tmp_path / "bounces.mbox"))
    assert status == 0
    assert lines == EXPECTED_LINES
    assert "5 mails: 2 bounces (1 hard, 1 soft), 1 complaint, 2 not bounces" in err

    status, lines, err = _run(capsys, config, "--mbox", str(tmp_path / "bounces.mbox"))
    assert (status, lines) == (0, set())
    assert "0 not bounces (left alone), 5 read before" in err
    assert (tmp_path / "bounces.mbox").read_bytes() == before  # nothing changed


def test_import_applies_the_policy_to_the_list(tmp_path, capsys, database_env):
    """A hard bounce and a complaint suppress at once; a soft bounce only on the third
    issue in a row (bounces.soft_limit); every change is in the history (#16)."""
    box = stdlib_mailbox.mbox(str(tmp_path / "bounces.mbox"))
    for name in BOUNCES + OTHERS:
        box.add((DATA / name).read_bytes())
    box.close()
    config = _config(tmp_path)
    people = ("jane.doe@example.com", "omar@example.net", "reader.one@yahoo.example", "x@ok.org")
    with open_store(database_env) as store:
        store.import_subscribers([Subscriber(p) for p in people], "list.csv")
        for month in ("2026-09", "2026-10", "2026-11"):
            for address in people:
                store.mark_sent(month, address, "<m>")
        for month in ("2026-09", "2026-10"):  # omar's mailbox was full twice before
            soft = Bounce("omar@example.net", "4.2.2", False, "full", message_id=f"<mash.{month}.")
            assert store.apply_bounce(soft, 3) is None

    status, lines, err = _run(capsys, config, "--mbox", str(tmp_path / "bounces.mbox"))
    assert status == 0 and lines == EXPECTED_LINES
    assert "; 3 addresses suppressed" in err
    assert "jane.doe@example.com is now bounced: hard bounce 5.1.1 on the 2026-11 issue" in err
    with open_store(database_env) as store:
        now = {s.email: (s.status, s.status_reason) for s in store.subscribers()}
        history = store.subscriber_history("reader.one@yahoo.example")
    assert now["jane.doe@example.com"][0] == "bounced"
    assert now["omar@example.net"][0] == "bounced"
    assert now["omar@example.net"][1].startswith(
        "soft bounces on 3 issues in a row (2026-09, 2026-10, 2026-11)"
    )
    assert now["reader.one@yahoo.example"] == (
        "complained",
        "spam complaint (abuse) on the 2026-11 issue",
    )
    assert now["x@ok.org"] == ("subscribed", "imported from list.csv")
    assert [(c.old, c.new) for c in history] == [(None, "subscribed"), ("subscribed", "complained")]


def test_maildir_files_are_not_moved_and_new_mail_is_read_on_the_next_run(tmp_path, capsys):
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, name in enumerate(BOUNCES[:1] + OTHERS):
        (maildir / "new" / f"{i}.mash").write_bytes((DATA / name).read_bytes())
    config = _config(tmp_path)

    status, lines, err = _run(capsys, config, "--maildir", str(maildir))
    assert lines == {"jane.doe@example.com\t5.1.1\thard"}
    assert sorted(p.name for p in (maildir / "new").iterdir()) == ["0.mash", "1.mash", "2.mash"]

    (maildir / "cur" / "3.mash:2,").write_bytes((DATA / "qmail-no-mailbox.eml").read_bytes())
    status, lines, err = _run(capsys, config, "--maildir", str(maildir))
    assert lines == {"ivo@example.net\t5.1.1\thard"}
    assert "4 mails: 1 bounce (1 hard, 0 soft), 0 complaints, 0 not bounces" in err
    assert "3 read before" in err


def test_a_missing_mailbox_is_an_error_naming_it(tmp_path, capsys):
    status = cli.main(
        ["--config", str(_config(tmp_path)), "bounces", "import", "--maildir", "/nonexistent/x"]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert "mash: not a Maildir (no cur/ or new/ folder): '/nonexistent/x'" in err


def test_a_mail_without_message_id_is_known_by_its_bytes(tmp_path):
    raw = b"From: a@example.com\nSubject: hi\n\nhello\n"
    assert message_key(raw) == message_key(raw) != message_key(raw + b"!")
    assert message_key(raw).startswith("sha256:")
    assert message_key(b"Message-ID: <x@y>\n\nbody") == "<x@y>"


def test_mails_read_are_kept_in_the_store(database):
    """Each mail is read once, on either engine: on PostgreSQL across machines (#15)."""
    with open_store(database) as store:
        seen = store.seen_mails()
        seen.add("<a@b>")
        seen.add("<a@b>")
        assert "<a@b>" in seen and "<c@d>" not in seen
    with open_store(database) as store:
        assert "<a@b>" in store.seen_mails()
        assert store.mail_keys_read() == {"<a@b>"}


def test_import_with_an_in_memory_set(tmp_path):
    maildir = tmp_path / "M"
    (maildir / "new").mkdir(parents=True)
    (maildir / "new" / "1").write_bytes((DATA / "gmail-disabled.eml").read_bytes())
    seen: set[str] = set()
    first = import_bounces(read_maildir(maildir), seen)
    again = import_bounces(read_maildir(maildir), seen)
    assert [r.recipient for r in first.records] == ["lee.w@example.com"]
    assert (again.messages, again.already, again.records) == (1, 1, [])


# --- IMAP over TLS: a real Dovecot ---------------------------------------------------------


@dataclass
class Dovecot:
    port: int
    maildir: Path
    cert: Path
    mail_user: str

    def deliver(self, name: str, raw: bytes) -> None:
        path = self.maildir / "new" / name
        path.write_bytes(raw)
        if os.geteuid() == 0:
            shutil.chown(path, self.mail_user)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dovecot_conf(root: Path, port: int, mail_user: str, group: str) -> str:
    rootless = (
        ""
        if os.geteuid() == 0
        else (
            f"default_internal_user = {mail_user}\ndefault_internal_group = {group}\n"
            f"default_login_user = {mail_user}\n"
            "service anvil {\n  chroot =\n}\n"
        )
    )
    return f"""base_dir = {root}/run
state_dir = {root}/run
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={group} home={root}/home
}}
mail_location = maildir:{root}/Maildir
{rootless}service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """Start Dovecot on a loopback port with a self-signed certificate and one Maildir."""
    binary = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )
    if binary is None:
        pytest.skip(
            "dovecot is not installed (Debian's dovecot-imapd; `make test` installs it as root)"
        )
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the test IMAP server")
    # not pytest's tmp_path: its 0700 folders keep Dovecot's mail user out
    root = Path(tempfile.mkdtemp(prefix="mash-dovecot-"))
    root.chmod(0o755)
    mail_user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    group = "nogroup" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        import grp

        try:
            grp.getgrnam(group)
        except KeyError:
            group = "nobody"
    process = None
    try:
        for sub in ("run", "home", "Maildir/new", "Maildir/cur", "Maildir/tmp"):
            (root / sub).mkdir(parents=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
        (root / "passwd").write_text(f"bounce:{{PLAIN}}{PASSWORD}\n")
        if os.geteuid() == 0:
            for sub in ("home", "Maildir", "Maildir/new", "Maildir/cur", "Maildir/tmp"):
                shutil.chown(root / sub, mail_user, group)
        port = _free_port()
        (root / "dovecot.conf").write_text(_dovecot_conf(root, port, mail_user, group))
        process = subprocess.Popen(
            [binary, "-F", "-c", str(root / "dovecot.conf")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (root / "dovecot.log").read_text()
                        if (root / "dovecot.log").exists()
                        else ""
                    )
                    out = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"dovecot did not start: {out} {log}")
                time.sleep(0.1)
        yield Dovecot(port, root / "Maildir", root / "cert.pem", mail_user)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()
        shutil.rmtree(root, ignore_errors=True)


def _flags(server: Dovecot) -> dict[str, str]:
    """Return each mail's Message-ID and IMAP flags, read as the test's own client."""
    context = ssl.create_default_context(cafile=str(server.cert))
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=context, timeout=10)
    try:
        client.login("bounce", PASSWORD)
        client.select("INBOX", readonly=True)
        _, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    finally:
        client.logout()
    flags = {}
    for item in data:
        if isinstance(item, tuple):
            flags[message_key(item[1])] = item[0].decode()
    return flags


def test_imap_import_twice_reads_each_mail_once_and_leaves_non_bounces_alone(
    dovecot, tmp_path, capsys, monkeypatch
):
    for i, name in enumerate(BOUNCES + OTHERS):
        dovecot.deliver(f"{i}.test:2,", (DATA / name).read_bytes())
    config = _config(tmp_path, dovecot.port)
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert))
    monkeypatch.setenv("MASH_TEST_BOUNCES_PASSWORD", PASSWORD)

    status, lines, err = _run(capsys, config, "--imap")
    assert status == 0, err
    assert lines == EXPECTED_LINES
    assert "5 mails: 2 bounces (1 hard, 1 soft), 1 complaint, 2 not bounces (left alone)" in err
    assert PASSWORD not in err

    flags = _flags(dovecot)
    assert len(flags) == 5  # nothing deleted
    for name in BOUNCES:
        key = message_key((DATA / name).read_bytes())
        assert "\\Seen" in flags[key], name
    for name in OTHERS:
        key = message_key((DATA / name).read_bytes())
        assert "\\Seen" not in flags[key], name  # a person may still want to read it

    status, lines, err = _run(capsys, config, "--imap")
    assert (status, lines) == (0, set())
    assert "5 mails: 0 bounces (0 hard, 0 soft), 0 complaints, 0 not bounces" in err
    assert "5 read before" in err

    dovecot.deliver("9.test:2,", (DATA / "qmail-no-mailbox.eml").read_bytes())
    status, lines, err = _run(capsys, config, "--imap")
    assert lines == {"ivo@example.net\t5.1.1\thard"}


def test_imap_wrong_password_and_untrusted_certificate_fail_naming_the_mailbox(
    dovecot, tmp_path, capsys, monkeypatch
):
    config = _config(tmp_path, dovecot.port)
    monkeypatch.setenv("MASH_TEST_BOUNCES_PASSWORD", "wrong-password")
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert))
    status = cli.main(["--config", str(config), "bounces", "import", "--imap"])
    err = capsys.readouterr().err
    assert status == 1
    assert f"imaps://127.0.0.1:{dovecot.port}/INBOX (user bounce)" in err
    assert "login refused: [AUTHENTICATIONFAILED]" in err
    assert "wrong-password" not in err

    monkeypatch.delenv("SSL_CERT_FILE")  # a self-signed certificate is not trusted
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    status = cli.main(["--config", str(config), "bounces", "import", "--imap"])
    err = capsys.readouterr().err
    assert status == 1 and "cannot connect" in err and "CERTIFICATE_VERIFY_FAILED" in err


def test_imap_without_the_password_variable_is_a_config_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MASH_TEST_BOUNCES_PASSWORD", raising=False)
    status = cli.main(["--config", str(_config(tmp_path)), "bounces", "import", "--imap"])
    assert status == 2
    assert "$MASH_TEST_BOUNCES_PASSWORD" in capsys.readouterr().err


def test_bounces_settings_are_read_and_checked(tmp_path):
    from mash.config import load_config
    from mash.errors import ConfigError

    config = load_config(_config(tmp_path, 1993))
    assert (config.bounces.host, config.bounces.port, config.bounces.folder) == (
        "127.0.0.1",
        1993,
        "INBOX",
    )
    assert config.bounces.password_env == "MASH_TEST_BOUNCES_PASSWORD"
    path = tmp_path / "bad.yaml"
    path.write_text("feeds: []\nbounces:\n  host: x\n  pasword_env: X\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:4: .*pasword_env"):
        load_config(path)
    path.write_text("feeds: []\nbounces:\n  port: 70000\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3: bounces.port must be"):
        load_config(path)
    assert config.bounces.soft_limit == 3  # the default (#16)
    path.write_text("feeds: []\nbounces:\n  soft_limit: 5\n")
    assert load_config(path).bounces.soft_limit == 5
    path.write_text("feeds: []\nbounces:\n  soft_limit: 0\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3: bounces.soft_limit must be"):
        load_config(path)
