"""The README matches the product: its tables against the code, and the UI's descriptions render.

- every environment variable the code reads is in the README's Configuration table;
- every asset a README table names exists, and every asset of the Definitions is named in the README;
- the reconciliation findings table states each finding type's owner team and severity as the model does;
- no description shown in the Dagster UI holds a raw `<word>` outside backticks (the UI renders
  descriptions as Markdown, where `<date>` is an HTML tag and vanishes).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


# ------------------------------------------------------------------ README parsing


def _section(title: str) -> str:
    """The README text under the `## title` heading, up to the next `## ` heading."""
    m = re.search(rf"^## {re.escape(title)}[^\n]*\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert m, f"README has no section '## {title}'"
    return m.group(1)


def _tables(text: str) -> list[list[list[str]]]:
    """Markdown tables in `text`: each a list of rows (header first, the |---| rule dropped) of cells."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _code_names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# ------------------------------------------------------------------ environment variables

ENV_READ_PY = [
    re.compile(r"os\.environ(?:\.get)?\s*[\[(]\s*[\"']([A-Z][A-Z0-9_]+)[\"']"),
    re.compile(r"os\.getenv\(\s*[\"']([A-Z][A-Z0-9_]+)[\"']"),
    re.compile(r"EnvVar\(\s*[\"']([A-Z][A-Z0-9_]+)[\"']"),
    # the settings helpers (`_env("PIPELINES_HOME", ...)`, `_float("PIPELINES_SYNC_...")`, ...) and any other
    # literal naming one of the product's variable families
    re.compile(r"[\"']((?:PIPELINES|CENTRA|NEWSTORE|COMMERCETOOLS|CLOUDSHELF|BUSINESSCENTRAL|DAGSTER)_[A-Z0-9_]+)[\"']"),
]
# `${NAME:-default}`, `${NAME}` and `$NAME` in the shell scripts
ENV_READ_SH = re.compile(r"\$\{?([A-Z][A-Z0-9_]+)")
# Variables the shell itself provides, or the scripts set for themselves.
SHELL_OWN = {"PATH", "HOME", "PWD", "SECONDS", "UID", "EUID", "IFS", "PYTHON_BIN", "SETUP_LOG", "SETUP_STEP",
             "SETUP_STEPS", "DEBIAN_FRONTEND", "BASH_SOURCE"}
# Literals that match the families but are not variables read from the environment.
NOT_VARIABLES = {"PIPELINES_SYNC_"}


def env_vars_read() -> dict[str, set[str]]:
    """Every environment variable the code of pipelines/ and scripts/ reads, with the files reading it."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "pipelines").rglob("*.py")):
        text = path.read_text()
        for rx in ENV_READ_PY:
            for name in rx.findall(text):
                found.setdefault(name, set()).add(str(path.relative_to(REPO)))
    for path in sorted((REPO / "scripts").iterdir()):
        if not path.is_file():
            continue
        text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        own = set(re.findall(r"^\s*(?:local\s+)?([A-Z][A-Z0-9_]+)=", text, re.M))
        for name in ENV_READ_SH.findall(text):
            if name not in SHELL_OWN and name not in own:
                found.setdefault(name, set()).add(str(path.relative_to(REPO)))
    for name in NOT_VARIABLES:
        found.pop(name, None)
    return found


def documented_env_vars() -> tuple[set[str], dict[str, str]]:
    """(variables named in the Configuration table, {family prefix: its row} for rows like `PIPELINES_SYNC_*`)."""
    tables = _tables(_section("Configuration"))
    assert tables, "the Configuration section has no table"
    names: set[str] = set()
    families: dict[str, str] = {}
    for table in tables:
        assert table[0][0].lower() == "variable", table[0]
        for row in table[1:]:
            for name in _code_names(row[0]):
                if name.endswith("*"):
                    families[name.rstrip("*")] = " | ".join(row)
                else:
                    names.add(name)
    return names, families


def _is_documented(name: str, names: set[str], families: dict[str, str]) -> bool:
    if name in names:
        return True
    for prefix, row in families.items():
        if name.startswith(prefix):
            suffix = name[len(prefix) - 1:]  # keeps the underscore: `_RUN_WINDOW_S`
            if re.search(rf"`{re.escape(suffix)}`", row):
                return True
    return False


def test_the_scan_finds_what_the_code_reads() -> None:
    """The scanner itself: variables read in each style are found (a scanner finding nothing passes anything)."""
    found = env_vars_read()
    for name in ("PIPELINES_HOME", "CENTRA_API_TOKEN", "PIPELINES_SYNC_RUN_WINDOW_S", "PIPELINES_INTAKE_WORKERS",
                 "NEWSTORE_AUTH_URL", "PYTHON"):
        assert name in found, name
    names, families = documented_env_vars()
    assert "PIPELINES_HOME" in names and "PIPELINES_SYNC_" in families
    assert not _is_documented("PIPELINES_SYNC_NO_SUCH_KNOB", names, families)


def test_every_environment_variable_read_is_in_the_configuration_table() -> None:
    names, families = documented_env_vars()
    missing = {name: sorted(files) for name, files in env_vars_read().items()
               if not _is_documented(name, names, families)}
    assert not missing, f"read by the code but not in the README's Configuration table: {missing}"


def test_every_documented_variable_is_read() -> None:
    """The reverse: the table lists nothing the code no longer reads (DAGSTER_PG_* are read by
    deploy/dagster.postgres.yaml, DAGSTER_HOME by Dagster itself)."""
    read = set(env_vars_read())
    deploy = (REPO / "deploy" / "dagster.postgres.yaml").read_text()
    names, _ = documented_env_vars()
    stale = {n for n in names if n not in read and n not in deploy and n != "DAGSTER_HOME"}
    assert not stale, f"in the README's Configuration table but read nowhere: {sorted(stale)}"


# ------------------------------------------------------------------ Definitions


@pytest.fixture(scope="module")
def defs():  # noqa: ANN201
    from pipelines.definitions import defs

    return defs


def _asset_keys(defs) -> set[str]:  # noqa: ANN001
    return {key.to_user_string() for key in defs.resolve_all_asset_keys()}


def test_assets_in_readme_tables_exist_and_every_asset_is_in_the_readme(defs) -> None:  # noqa: ANN001
    keys = _asset_keys(defs)
    tabled: set[str] = set()
    for table in _tables(README):
        if table[0][0].lower() == "asset":
            for row in table[1:]:
                tabled.update(_code_names(row[0]))
    assert tabled, "the README has no asset table"
    assert not tabled - keys, f"assets in README tables that the Definitions lack: {sorted(tabled - keys)}"
    named = set(re.findall(r"`([a-z][a-z0-9_]*)`", README))
    assert not keys - named, f"assets of the Definitions the README never names: {sorted(keys - named)}"


def test_every_raw_dataset_is_in_the_raw_datasets_table(defs) -> None:  # noqa: ANN001
    """Each asset of the groups the table covers (pos, commerce, catalog) has a row."""
    from pipelines.definitions import raw_assets

    rows = {name for table in _tables(_section("Raw datasets")) for row in table[1:] for name in _code_names(row[0])}
    raw = {key.to_user_string() for a in raw_assets for key in a.keys}
    assert raw <= rows, f"raw datasets missing from the Raw datasets table: {sorted(raw - rows)}"


def _split(cell: str) -> list[str]:
    return [p.strip() for p in re.split(r"\s*[/,]\s*", cell) if p.strip()]


def _team(word: str) -> str:
    return {"retail operations": "retail_operations", "e-commerce": "ecommerce"}.get(word, word)


def test_findings_table_owner_and_severity_match_the_model() -> None:
    """One entry per finding type in the owner and severity columns, in the order the types are
    named (a single entry stands for all of the row's types)."""
    from pipelines.domain.reconciliation.model import FINDING_TYPES

    tables = [t for t in _tables(_section("Daily reconciliation for finance")) if t[0][0] == "finding type"]
    assert len(tables) == 1, "expected one findings table"
    header = [c.lower() for c in tables[0][0]]
    owner_col, severity_col = header.index("owner"), header.index("severity")
    seen: dict[str, tuple[str, str]] = {}
    for row in tables[0][1:]:
        types = _code_names(row[0])
        owners, severities = _split(row[owner_col]), _split(row[severity_col])
        for entries, what in ((owners, "owners"), (severities, "severities")):
            assert len(entries) in (1, len(types)), f"{types}: {len(entries)} {what} for {len(types)} types"
        for i, name in enumerate(types):
            seen[name] = (_team(owners[0 if len(owners) == 1 else i]),
                          severities[0 if len(severities) == 1 else i])
    model = {name: (t.owner_team, t.severity) for name, t in FINDING_TYPES.items()}
    assert set(seen) == set(model), (f"types only in the README: {sorted(set(seen) - set(model))}, "
                                     f"only in the model: {sorted(set(model) - set(seen))}")
    wrong = {n: {"readme": seen[n], "model": model[n]} for n in model if seen[n] != model[n]}
    assert not wrong, f"owner/severity differ from pipelines/domain/reconciliation/model.py: {wrong}"


# ------------------------------------------------------------------ descriptions render

RAW_TAG = re.compile(r"<[A-Za-z][A-Za-z0-9_-]*>")


def raw_tags(text: str | None) -> list[str]:
    """`<word>` outside code spans (`...`, ```...```): Markdown would swallow it as an HTML tag."""
    if not text:
        return []
    outside = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.S)
    return RAW_TAG.findall(outside)


def ui_descriptions(defs) -> dict[str, str | None]:  # noqa: ANN001
    out: dict[str, str | None] = {}
    for spec in defs.resolve_all_asset_specs():
        out[f"asset {spec.key.to_user_string()}"] = spec.description
    graph = defs.resolve_asset_graph()
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        out[f"check {check_key.asset_key.to_user_string()}:{check_key.name}"] = spec.description
    for job in defs.resolve_all_job_defs():
        out[f"job {job.name}"] = job.description
    repo = defs.get_repository_def()
    for schedule in repo.schedule_defs:
        out[f"schedule {schedule.name}"] = schedule.description
    for sensor in repo.sensor_defs:
        out[f"sensor {sensor.name}"] = sensor.description
    return out


def test_raw_tag_detection() -> None:
    assert raw_tags("under PIPELINES_REPORTS_DIR/<date>/") == ["<date>"]
    assert raw_tags("under `PIPELINES_REPORTS_DIR/<date>/` and ```\n<YYYY-MM>\n```") == []
    assert raw_tags("more than >10,000 runs, a < b") == []


def test_no_description_holds_a_raw_tag(defs) -> None:  # noqa: ANN001
    descriptions = ui_descriptions(defs)
    assert any(k.startswith("check ") for k in descriptions) and any(k.startswith("sensor ") for k in descriptions)
    bad = {name: raw_tags(text) for name, text in descriptions.items() if raw_tags(text)}
    assert not bad, f"wrap these in backticks (Markdown renders <word> as an HTML tag): {bad}"
