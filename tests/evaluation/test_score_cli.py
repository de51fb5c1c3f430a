"""`xstilts score` as a user runs it: the official mock oracle, bad input, tolerance."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.score import run
from storage.errors import UserError


def xstilts() -> str:
    beside = Path(sys.executable).parent / "xstilts"
    found = str(beside) if beside.exists() else shutil.which("xstilts")
    assert found, "the xstilts console script is not installed"
    return found


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [xstilts(), "score", *map(str, args)], capture_output=True, text=True, timeout=60
    )


def oracle_rows(readme: Path) -> list[tuple[str, str, float]]:
    """(task, metric, expected average) from the oracle README's table."""
    rows = []
    for line in readme.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.fullmatch(r"[\d. /]+", cells[2]):
            continue
        for metric, value in zip(cells[1].split(" / "), cells[2].split(" / "), strict=True):
            rows.append((cells[0], metric, float(value)))
    return rows


@pytest.fixture(scope="module")
def mock_scores(mock: Path) -> dict:
    done = cli("--predictions", mock / "predictions", "--labels", mock / "labels", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_mock_oracle_averages_to_1e9(mock_scores: dict, oracles: Path):
    rows = oracle_rows(oracles / "README.md")
    assert len(rows) == 19  # ten tasks, every metric of the table
    for task, metric, expected in rows:
        assert mock_scores["tasks"][task]["average"][metric] == pytest.approx(expected, abs=1e-9)


def test_json_document_shape(mock_scores: dict, mock: Path):
    assert set(mock_scores["tasks"]) == {p.name for p in (mock / "labels").iterdir()}
    xnli = mock_scores["tasks"]["xnli"]
    assert len(xnli["languages"]) == 15 and set(xnli["languages"]["de"]) == {"accuracy"}
    # The mock tree has every XTREME task on XTREME's languages: overall exists there only.
    assert mock_scores["benchmarks"]["xtreme"]["overall"] is not None
    assert mock_scores["benchmarks"]["xtreme-r"]["overall"] is None


def test_tasks_option_and_table_output(mock: Path):
    done = cli("--predictions", mock / "predictions", "--labels", mock / "labels",
               "--tasks", "mlqa,xnli")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "mlqa" in done.stdout and "81.77" in done.stdout and "udpos" not in done.stdout


def _one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0]


def test_cli_bad_input_is_one_line_exit_2_no_stdout(tree):
    preds, labels = tree("xnli", "panx")
    (preds / "xnli" / "test-de.tsv").unlink()
    _one_line_error(cli("--predictions", preds, "--labels", labels, "--json"), "test-de.tsv")


def test_cli_unknown_task_folder(tree):
    preds, labels = tree("xnli")
    (preds / "xnl").mkdir()
    done = cli("--predictions", preds, "--labels", labels)
    _one_line_error(done, "xnl", "did you mean 'xnli'")


# In-process: each bad input raises one UserError naming the file, before any output.


def _expect_error(capsys, preds: Path, labels: Path, *needles: str, tasks=None) -> None:
    with pytest.raises(UserError) as caught:
        run(preds, labels, tasks, as_json=True)
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message
    assert capsys.readouterr().out == ""


def test_missing_label_file(tree, capsys):
    preds, labels = tree("mlqa")
    (labels / "mlqa" / "test-zh.json").unlink()
    _expect_error(capsys, preds, labels, str(labels / "mlqa" / "test-zh.json"))


def test_unequal_line_counts(tree, capsys):
    preds, labels = tree("pawsx")
    path = preds / "pawsx" / "test-fr.tsv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    _expect_error(capsys, preds, labels, str(path), "examples")


def test_unequal_sentence_counts(tree, capsys):
    preds, labels = tree("udpos")
    path = preds / "udpos" / "test-en.tsv"
    path.write_text(path.read_text() + "\nNOUN\n")
    _expect_error(capsys, preds, labels, str(path), "examples")


def test_malformed_json(tree, capsys):
    preds, labels = tree("xquad")
    path = preds / "xquad" / "test-es.json"
    path.write_text('{\n  "id": "answer",\n')
    _expect_error(capsys, preds, labels, f"{path}:3", "malformed JSON")


def test_json_of_the_wrong_shape(tree, capsys):
    preds, labels = tree("mewslix")
    path = preds / "mewslix" / "test-ja.json"
    path.write_text('{"id": "Q1"}')
    _expect_error(capsys, preds, labels, str(path), "'id'")


def test_not_squad_labels(tree, capsys):
    preds, labels = tree("tydiqa")
    path = labels / "tydiqa" / "test-fi.json"
    path.write_text('{"data": [{"title": "no paragraphs"}]}')
    _expect_error(capsys, preds, labels, str(path), "SQuAD")


def test_malformed_jsonl(tmp_path, capsys):
    for side, rows in (
        ("predictions", '{"label": 1}\nnot json\n'),
        ("labels", '{"label": 1}\n' * 2),
    ):
        (tmp_path / side / "xcopa").mkdir(parents=True)
        (tmp_path / side / "xcopa" / "test-et.jsonl").write_text(rows)
    path = tmp_path / "predictions" / "xcopa" / "test-et.jsonl"
    _expect_error(capsys, tmp_path / "predictions", tmp_path / "labels", f"{path}:2", "JSON")


def test_malformed_tsv(tree, capsys):
    preds, labels = tree("bucc2018")
    path = preds / "bucc2018" / "test-ru.tsv"
    path.write_text(path.read_text() + "ru-000001 en-000002\n")
    _expect_error(capsys, preds, labels, f"{path}:11", "source_id<TAB>target_id")


def test_two_columns_in_a_tag_file(tree, capsys):
    preds, labels = tree("panx")
    path = labels / "panx" / "test-de.tsv"
    path.write_text("Berlin\tB-LOC\n")
    _expect_error(capsys, preds, labels, f"{path}:1", "tab")


def test_unknown_language(tree, capsys):
    preds, labels = tree("xnli")
    for side in (preds, labels):
        (side / "xnli" / "test-xx.tsv").write_text("neutral\n")
    _expect_error(capsys, preds, labels, "test-xx.tsv", "'xx'")


def test_wrong_extension(tree, capsys):
    preds, labels = tree("tatoeba")
    (preds / "tatoeba" / "test-de.tsv").rename(preds / "tatoeba" / "test-de.txt")
    _expect_error(capsys, preds, labels, "test-de.txt", "test-<lang>.tsv")


def test_unknown_or_absent_requested_task(tree, capsys):
    preds, labels = tree("xnli")
    _expect_error(capsys, preds, labels, "did you mean 'xnli'", tasks=["xnlii"])
    _expect_error(capsys, preds, labels, "pawsx", tasks=["pawsx"])


def test_missing_tree(tmp_path, capsys):
    _expect_error(capsys, tmp_path / "nope", tmp_path, str(tmp_path / "nope"))


# Tolerance: exactly where the official scorer is tolerant.


def _scores(preds: Path, labels: Path, capsys) -> tuple[dict, str]:
    run(preds, labels, None, as_json=True)
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_missing_qa_id_scores_zero_and_extra_id_is_ignored(tree, capsys):
    preds, labels = tree("tydiqa")
    path = preds / "tydiqa" / "test-en.json"
    answers = json.loads(path.read_text())
    before = _scores(preds, labels, capsys)[0]["tasks"]["tydiqa"]["languages"]["en"]
    answers.pop(next(iter(answers)))
    answers["not-a-question"] = "whatever"
    path.write_text(json.dumps(answers))
    result, err = _scores(preds, labels, capsys)
    after = result["tasks"]["tydiqa"]["languages"]["en"]
    assert after["f1"] < before["f1"] or before["f1"] == 0
    assert "unanswered" in err and "ignored" in err


def test_bucc_pairs_not_in_gold_count_as_wrong(tree, capsys):
    preds, labels = tree("bucc2018")
    path = preds / "bucc2018" / "test-de.tsv"
    path.write_text(path.read_text() + "de-1\ten-1\n")
    de = _scores(preds, labels, capsys)[0]["tasks"]["bucc2018"]["languages"]["de"]
    gold = len((labels / "bucc2018" / "test-de.tsv").read_text().splitlines())
    assert de["recall"] == pytest.approx(5 / gold * 100)  # the mock gets 5 of 10 right
    assert de["precision"] == pytest.approx(5 / (gold + 1) * 100)


def test_uneven_sentence_lengths_are_scored_with_a_warning(tree, capsys):
    preds, labels = tree("udpos")
    path = preds / "udpos" / "test-en.tsv"
    path.write_text("NOUN\n" + path.read_text())
    _, err = _scores(preds, labels, capsys)
    assert "differ in length" in err


def test_labels_scored_against_themselves_are_perfect(mock: Path, capsys):
    tasks = ["pawsx", "xnli", "udpos", "panx", "bucc2018", "tatoeba", "mewslix"]
    run(mock / "labels", mock / "labels", tasks, as_json=True)
    result = json.loads(capsys.readouterr().out)
    for task in tasks:
        assert set(result["tasks"][task]["average"].values()) == {100.0}, task
