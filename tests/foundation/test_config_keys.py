"""Unknown keys in every config table are errors (issue 11 item 7): one line naming the file, the
table, the key and the nearest allowed key. Nothing falls back silently (`databse_url` used to give
SQLite; `secret = "..."` was ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.config import load_config
from mailflow.errors import ConfigError, PolicyError
from mailflow.resources import bundled_dir
from tests.conftest import write_config


def _edit(text: str, after: str, line: str) -> str:
    assert after in text
    return text.replace(after, f"{after}\n{line}", 1)


@pytest.mark.parametrize(("after", "line", "says"), [
    ("[mailflow]", 'databse_url = "postgresql://db/mailflow"',
     "[mailflow]: unknown key 'databse_url' (did you mean 'database_url'?)"),
    ("[mailflow]", 'secret = "hunter2-hunter2-hunter2-hunter2-hunter2"',
     "[mailflow]: 'secret' must not be in the file; use 'secret_env' or 'secret_file'"),
    ("[mailflow]", 'secret_evn = "MAILFLOW_SECRET"', "did you mean 'secret_env'?"),
    ("[mailflow]", 'colour = "blue"', "[mailflow]: unknown key 'colour' (allowed: database_url,"),
    ('prefix = "SSP"', 'adress = "x@example.org"',
     "[[partnership]] #1: unknown key 'adress' (did you mean 'address'?)"),
    ('prefix = "SSP"', 'subject_prefx = "[secure]"', "did you mean 'subject_prefix'?"),
])
def test_unknown_key_when_the_config_loads(tmp_path: Path, after: str, line: str, says: str) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    path.write_text(_edit(path.read_text(), after, line))
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: ") and says in message and "\n" not in message


@pytest.mark.parametrize(("table", "line", "says"), [
    ("[daemon]", "pol_seconds = 30", "[daemon]: unknown key 'pol_seconds' (did you mean 'poll_seconds'?)"),
    ("[limits]", "max_mesage_bytes = 1000", "[limits]: unknown key 'max_mesage_bytes' (did you mean "
                                            "'max_message_bytes'?)"),
    ("[mailfow]", 'var_dir = "var"', "unknown key 'mailfow' (did you mean 'mailflow'?)"),
])
def test_unknown_key_in_the_other_tables(tmp_path: Path, table: str, line: str, says: str) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    text = path.read_text()
    first_partnership = text.index("[[partnership]]")
    path.write_text(text[:first_partnership] + f"{table}\n{line}\n" + text[first_partnership:])
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(path) in str(err.value) and says in str(err.value)


@pytest.mark.parametrize(("after", "line", "says"), [
    ('kind = "maildir"', 'pth = "elsewhere"', "[[partnership]] #1 mailbox: unknown key 'pth' (did you mean 'path'?)"),
    ('kind = "file"', 'paht = "elsewhere"', "[[partnership]] #1 transport: unknown key 'paht' (did you mean 'path'?)"),
])
def test_unknown_key_in_mailbox_and_transport_tables(tmp_path: Path, after: str, line: str, says: str) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    path.write_text(_edit(path.read_text(), after, line))
    with pytest.raises(ConfigError) as err:   # when the config loads (doctor), not when run builds them
        load_config(str(path))
    assert str(err.value) == f"{path}: {says}"


@pytest.mark.parametrize(("mailbox", "transport", "says"), [
    ('kind = "imap"\nhost = "imap.example.org"\nusername = "u"\nidle_renew = 60', None,
     "mailbox: unknown key 'idle_renew' (did you mean 'idle_renew_seconds'?)"),
    ('kind = "graph"\nmailbox = "sab@example.org"\npage_size = 0', None, "mailbox.page_size: must be > 0, got 0"),
    ('kind = "ews"\nserver = "mail.example.org"\nautodiscover = "no"', None,
     "mailbox.autodiscover: expected true or false, got a string 'no'"),
    (None, 'kind = "smtp"\nhost = "smtp.example.org"\ntls = "ssl"',
     "transport.tls: 'ssl' is not one of implicit, starttls, none"),
    (None, 'kind = "graph"\nmailbox = "sab@example.org"\npage_size = 50',
     "transport: unknown key 'page_size' (allowed:"),
    (None, 'kind = "ews"\nmailbox = "sab@example.org"\nauth = "basic"',
     "transport.auth: 'basic' is not one of ntlm, oauth2"),
    (None, 'kind = "carrier-pigeon"', "transport: 'kind' must be one of file, smtp, ews, graph, got 'carrier-pigeon'"),
])
def test_every_connector_kind_is_checked_when_the_config_loads(tmp_path: Path, mailbox: str | None,
                                                               transport: str | None, says: str) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", mailbox=mailbox, transport=transport)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value).startswith(f"{path}: [[partnership]] #1 {says}")


# --- the directory and policy files a config names are read when it loads -----------------------

EXAMPLE_DIRECTORY = bundled_dir("examples") / "directory.example.toml"


@pytest.mark.parametrize(("old", "new", "says"), [
    ("[partnership]\n", "[partnershp]\n", ": unknown key 'partnershp' (did you mean 'partnership'?)"),
    ("# shared_domains", "shared_domain = []\n#", "[partnership]: unknown key 'shared_domain' (did you mean "
                                                   "'shared_domains'?)"),
    ('domains = ["asc.swindon', 'domain = ["asc.swindon', "[[agency]] #1: unknown key 'domain' (did you mean "
                                                         "'domains'?)"),
    ("[roles]\n", "[roles]\nvice_chair = \"Vic <vic@ssp.example.org>\"\n",
     "[roles] vice_chair: expected a list, got a string 'Vic <vic@ssp.example.org>'"),
    ("manager = [\"Priya Examplewood, Team Manager <priya.examplewood@asc.swindon.example.org>\"]",
     "manager = [\"Priya Examplewood, Team Manager <priya.examplewood>\"]",
     "[[agency]] #1 contacts.manager[1]: 'priya.examplewood' is not an email address"),
    ('name = "Wiltshire Police"\n', "", "[[agency]] #3 name: is required"),
    ('business_team = ["business.team@ssp.example.org"]', 'business_team = ["business team"]',
     "[partnership] business_team[1]: 'business team' is not an email address"),
])
def test_a_broken_directory_stops_the_config_loading(tmp_path: Path, old: str, new: str, says: str) -> None:
    directory = tmp_path / "directory.toml"
    text = EXAMPLE_DIRECTORY.read_text()
    assert old in text
    directory.write_text(text.replace(old, new, 1))
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    path.write_text(path.read_text().replace(str(EXAMPLE_DIRECTORY), str(directory)))
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    message = str(err.value)
    assert message.startswith(f"{directory}: ") and says in message and "\n" not in message


def test_a_broken_policy_file_stops_the_config_loading(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    broken = (bundled_dir("policies") / "luton.toml").read_text().replace("[calendar]\n", "[calendar]\nnaton = 1\n")
    (policies / "luton.toml").write_text(broken)
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", extra=f'policies_dir = "{policies}"')
    with pytest.raises(PolicyError) as err:   # not the policy this partnership uses: run would still load it
        load_config(str(path))
    assert str(err.value) == f"{policies / 'luton.toml'}: calendar: unknown key 'naton' (did you mean 'nation'?)"


def test_every_table_of_every_file_is_closed_and_strict() -> None:
    """Each table the config, a connector, a directory or a policy file can hold is a `Table`: an
    unknown key is an error and "60" is not 60. A table added later inherits it; this finds one
    that does not (a plain BaseModel, a dict of anything)."""
    from typing import get_args

    from pydantic import BaseModel

    from mailflow.config import Config
    from mailflow.connector_options import SOURCE_OPTIONS, TRANSPORT_OPTIONS
    from mailflow.core.policy import PolicyFile
    from mailflow.directory import DirectoryFile
    from mailflow.validation import Table

    def models(annotation: object) -> list[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in get_args(annotation) for m in models(arg)]

    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = [Config, PolicyFile, DirectoryFile, *SOURCE_OPTIONS.values(),
                                   *TRANSPORT_OPTIONS.values()]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        assert issubclass(model, Table), model
        assert model.model_config.get("extra") == "forbid" and model.model_config.get("strict"), model
        for field in model.model_fields.values():
            todo.extend(models(field.annotation))
    names = {m.__name__ for m in seen}
    assert {"MailflowSettings", "DaemonSettings", "LimitsSettings", "Partnership", "ImapOptions", "SmtpOptions",
            "Stage", "Step", "AgencyTable", "DirectoryPartnership"} <= names
