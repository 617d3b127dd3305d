"""The synthetic four-intent session generator (src/actadapt/experiments/data/url_sessions.py)."""

from __future__ import annotations

import pytest

from actadapt.experiments.data.url_sessions import INTENTS, generate_sessions, write_sessions
from actadapt.experiments.data.urls import MAX_SESSION, deduplicate, leaked_urls, read_sessions, tokenize_url
from actadapt.experiments.folds import stratified_folds


# ------------------------------------------------------------------------------------------ generator
def test_generator_is_seeded_balanced_and_bounded():
    s = generate_sessions(400, seed=5)
    assert s == generate_sessions(400, seed=5) and s != generate_sessions(400, seed=6)
    labels = [lab for _, lab in s]
    assert {lab: labels.count(lab) for lab in INTENTS} == {lab: 100 for lab in INTENTS}
    lengths = [len(u) for u, _ in s]
    assert min(lengths) >= 1 and max(lengths) <= 60 and any(n > MAX_SESSION for n in lengths)
    assert all(tokenize_url(u) for urls, _ in s for u in urls)
    with pytest.raises(ValueError, match="unknown intent"):
        generate_sessions(3, intents=("browse", "sleep"))
    with pytest.raises(ValueError, match="noise=2"):
        generate_sessions(3, noise=2)


def test_generator_intents_differ_in_their_pages():
    # each intent's own pages are its most frequent path words (so the labels are learnable)
    own = {"browse": "c", "purchase": "checkout", "support": "help", "other": "blog"}
    s = generate_sessions(800, seed=0, noise=0.1)
    for intent, word in own.items():
        share = {lab: 0 for lab in INTENTS}
        for urls, lab in s:
            share[lab] += sum(word in tokenize_url(u) for u in urls)
        assert max(share, key=share.get) == intent


@pytest.mark.parametrize("name, layout", [("s.jsonl", "wide"), ("s.csv", "wide"), ("s.csv", "long")])
def test_generator_round_trips_through_format_a(tmp_path, name, layout):
    s = generate_sessions(120, seed=2)
    ds = read_sessions(write_sessions(str(tmp_path / name), s, layout), classes=INTENTS)
    assert ds.report.dropped == 0 and ds.report.truncated == sum(len(u) > MAX_SESSION for u, _ in s)
    assert ds.sessions == [u[:MAX_SESSION] for u, _ in s]
    assert [ds.classes[y] for y in ds.labels] == [lab for _, lab in s]
    clean = deduplicate(ds)
    for tr, te in stratified_folds(clean.labels, 5, seed=0):
        assert not leaked_urls(clean, tr, te)


def test_the_generator_command_never_overwrites_a_file_or_writes_through_a_link(tmp_path, capsys):
    from actadapt.experiments.data.url_sessions import main

    out = tmp_path / "sessions.jsonl"
    assert main([str(out), "--n", "8"]) == 0
    first = out.read_bytes()
    users = tmp_path / "thesis.csv"
    users.write_text("a user's file\n")
    assert main([str(users), "--n", "8", "--seed", "1"]) == 2
    assert users.read_text() == "a user's file\n"
    assert "already exists" in capsys.readouterr().out
    link = tmp_path / "link.jsonl"
    link.symlink_to(users)
    assert main([str(link), "--n", "8"]) == 2
    assert users.read_text() == "a user's file\n"
    assert main([str(out), "--n", "8", "--seed", "1"]) == 2  # its own earlier output too: choose a new name
    assert out.read_bytes() == first
