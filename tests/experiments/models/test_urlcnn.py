"""The URL-sequence CNN of Table 4 (src/actadapt/experiments/models/urlcnn.py): metrics, encoding, the model,
Word2Vec on training folds only, training through the shared loop."""

from __future__ import annotations

import pytest

from actadapt.experiments.config import ConfigError
from actadapt.experiments.data.url_sessions import INTENTS, generate_sessions
from actadapt.experiments.data.urls import MAX_SESSION, Tokenizer, UrlDataset, deduplicate
from actadapt.experiments.folds import stratified_folds


# ------------------------------------------------------------------------------------------ model (urlcnn.py)
def _intent_dataset(n=160, seed=0):
    s = generate_sessions(n, seed=seed, mean_len=8)
    return UrlDataset([u[:MAX_SESSION] for u, _ in s], [INTENTS.index(lab) for _, lab in s], list(INTENTS))


def test_metrics_match_sklearn():
    np = pytest.importorskip("numpy")
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_score, recall_score

    from actadapt.experiments.models.urlcnn import metrics

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 300), rng.integers(0, 3, 300)  # class 3 is never predicted
    m = metrics(y.tolist(), p.tolist(), 4)
    assert m["accuracy"] == pytest.approx(100 * accuracy_score(y, p))
    assert m["precision"] == pytest.approx(100 * precision_score(y, p, average="macro", zero_division=0))
    assert m["recall"] == pytest.approx(100 * recall_score(y, p, average="macro", zero_division=0))
    assert m["confusion"] == confusion_matrix(y, p, labels=range(4)).tolist()


def test_encode_sessions_rows_and_unknown_words():
    from actadapt.experiments.models.urlcnn import encode_sessions

    tok = Tokenizer()
    index = {"a.com": 2, "x": 3}
    sessions = [["http://a.com/x/y", "http://b.com/x"], ["http://a.com/"]]
    by_url = encode_sessions(sessions, tok, index, "urls", max_urls=4, max_words=2)
    assert by_url.shape == (2, 4, 2)
    assert by_url[0].tolist() == [[2, 3], [1, 3], [0, 0], [0, 0]]  # y cut by max_words; b.com unknown
    by_word = encode_sessions(sessions, tok, index, "words", max_words=5)
    assert by_word.shape == (2, 5, 1) and by_word[0, :, 0].tolist() == [2, 3, 1, 1, 3]
    with pytest.raises(ConfigError, match="'rows'"):
        encode_sessions(sessions, tok, index, "pages")


@pytest.mark.parametrize("conv", ["ReLU", "AReLU", "AGumb"])
@pytest.mark.parametrize("fc", ["ReLU", "AReLU", "AGumb"])
def test_urlcnn_grid_shapes_and_alphas(conv, fc):
    import torch

    from actadapt.experiments.models.urlcnn import UrlCNN
    from actadapt.training import alpha_parameters

    model = UrlCNN(num_words=30, seq_len=50, num_classes=4, dim=8, conv_act=conv, fc_act=fc, hidden=16)
    ids = torch.randint(0, 30, (3, 50, 4))
    out = model(ids)
    assert out.shape == (3, 4)
    out.sum().backward()
    n_alpha = sum(p.numel() for p in alpha_parameters(model))
    assert n_alpha == (20 + 50) * (conv != "ReLU") + 16 * (fc != "ReLU")


def test_word2vec_is_trained_on_training_folds_only(monkeypatch):
    from actadapt.experiments.models import urlcnn

    seen = []
    real = urlcnn.train_word2vec

    def spy(sentences, *args, **kwargs):
        seen.extend(sentences)
        return real(sentences, *args, **kwargs)

    monkeypatch.setattr(urlcnn, "train_word2vec", spy)
    ds = deduplicate(_intent_dataset())
    tr, te = stratified_folds(ds.labels, 5, seed=0)[0]
    s = urlcnn.UrlCNNSettings(epochs=1, dim=8, hidden=16, w2v_epochs=1)
    out = urlcnn.fit_evaluate(ds, tr, te, s)
    train_sentences = [Tokenizer()(u) for i in tr for u in ds.sessions[i]]
    assert seen == train_sentences
    assert out["rows"] == "urls" and out["seq_len"] == MAX_SESSION
    assert len(out["train_loss"]) == 1 and sum(map(sum, out["confusion"])) == len(te)


def test_learned_embeddings_learn_the_synthetic_intents():
    from actadapt.experiments.models.urlcnn import UrlCNNSettings, fit_evaluate

    ds = deduplicate(_intent_dataset(240, seed=3))
    tr, te = stratified_folds(ds.labels, 4, seed=0)[0]
    out = fit_evaluate(ds, tr, te, UrlCNNSettings(embedding="learned", epochs=8, dim=16, hidden=32, seed=1, lr=1e-2))
    assert out["train_loss"][-1] < out["train_loss"][0]
    assert out["accuracy"] > 40 and out["train_accuracy"] > 70  # chance is 25; the test part is 60 sessions


def test_a_diverging_fold_stops_and_says_so():
    from actadapt.experiments.models.urlcnn import UrlCNNSettings, fit_evaluate

    ds = deduplicate(_intent_dataset(120, seed=3))
    tr, te = stratified_folds(ds.labels, 4, seed=0)[0]
    settings = dict(embedding="learned", epochs=3, dim=8, hidden=16, seed=1)
    assert fit_evaluate(ds, tr, te, UrlCNNSettings(**settings))["diverged_epoch"] is None
    out = fit_evaluate(ds, tr, te, UrlCNNSettings(**settings, lr=1e30))
    assert out["diverged_epoch"] == len(out["train_loss"]) and out["diverged_epoch"] <= 3
