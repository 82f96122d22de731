"""Every documented default, attribute and number comes from the code.

The estimator's parameters are documented three times (its numpydoc
docstring, README's parameter table, the user guide's prose); these tests read
each against ``LeNet5Classifier().get_params()`` and the constants behind
the sentences, so a default changed in one place fails here until every page
says it.
"""

import ast
import re
from pathlib import Path

import pytest

from sklenet import LeNet5Classifier, _callbacks

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = LeNet5Classifier().get_params(deep=False)


def _literal(text):
    text = text.strip().strip("`")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text.strip('"')


def _docstring_defaults():
    doc = LeNet5Classifier.__doc__
    section = doc[doc.index("Parameters\n"):doc.index("Attributes\n")]
    return {name: _literal(default) for name, default in
            re.findall(r"^    (\w+) : .*?default=(.+?)\s*$", section, flags=re.M)}


def _readme_rows():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| parameter | default | meaning |"):]
    table = table[:table.index("\n\n")]
    rows = {}
    for line in table.splitlines()[2:]:
        names, defaults = line.split("|")[1:3]
        names = [n.strip(" `") for n in names.split(",")]
        values = [_literal(v) for v in defaults.split(",")]
        assert len(names) == len(values), line
        rows.update(zip(names, values))
    return rows


def test_the_docstring_states_every_default_as_get_params_gives_it():
    documented = _docstring_defaults()
    assert set(documented) == set(DEFAULTS)
    for name, value in DEFAULTS.items():
        assert documented[name] == value, name


def test_the_readme_table_states_every_default_as_get_params_gives_it():
    rows = _readme_rows()
    assert set(rows) == set(DEFAULTS)
    for name, value in DEFAULTS.items():
        assert rows[name] == value, name


def test_the_readme_names_every_fitted_attribute_the_docstring_documents():
    doc = LeNet5Classifier.__doc__
    attributes = re.findall(r"^    (\w+_) : ", doc[doc.index("Attributes\n"):], flags=re.M)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme[readme.index("Fitted attributes:"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    assert attributes
    for name in attributes:
        assert f"`{name}`" in paragraph, name


@pytest.mark.parametrize("page", ["docs/user_guide.rst", "README.md"])
def test_the_one_cycle_schedule_is_described_with_its_constants(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    if "warm-up" not in text:
        pytest.skip(f"{page} does not describe the schedule")
    if page.endswith(".rst"):
        assert f"``lr / {_callbacks.ONECYCLE_START_DIV:g}``" in text
        assert f"first\n{_callbacks.ONECYCLE_WARMUP:.0%} of the steps" in text or (
            f"first {_callbacks.ONECYCLE_WARMUP:.0%} of the steps" in text)
    assert DEFAULTS["lr_schedule"] == "onecycle"
