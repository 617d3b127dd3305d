r"""A small synthetic generator of web sessions with four intents (the paper's, PAPER.md §2.4).

The paper's sessions are private: up to 50 page visits on a retailer's site, labelled by a survey as
*browse* (browse/search product), *purchase* (complete transaction/purchase), *support* (get order/technical
support) or *other*. This generator makes look-alike sessions so that the session format (a) of
:mod:`.urls` and the whole Table 4 pipeline can be tested end to end, with a known answer.

A session is a visit to one of ``sites`` shops. Each intent draws its pages from its own mixture of URL
templates (product and search pages for *browse*, cart and checkout for *purchase*, orders and help pages
for *support*, blog, careers and store-locator pages for *other*); every intent also visits the shared pages
(home, login, search) and, with probability ``noise`` per visit, a page of another intent, so no single URL
gives the label away. Lengths are ``1 + Geometric`` with mean ``mean_len``, cut at ``max_len`` (default 60,
above the cap of 50, so capping is exercised). Query strings carry ids (dropped by the tokeniser) and
parameter names (kept). Everything is fixed by ``seed``.

Example::

    >>> sessions = generate_sessions(4, seed=0)
    >>> [label for _, label in sessions]          # doctest: +SKIP
    ['support', 'browse', 'other', 'purchase']
    >>> write_sessions("sessions.jsonl", sessions)  # or .csv (wide) / layout="long"
"""

from __future__ import annotations

import csv
import json
import os
import random
from typing import List, Sequence, Tuple

__all__ = ["INTENTS", "generate_sessions", "write_sessions"]

INTENTS = ("browse", "purchase", "support", "other")

_CATEGORIES = ("shoes", "laptops", "phones", "garden", "toys", "books", "kitchen", "sports")
_SHARED = ("/", "/login", "/search?q={word}", "/account", "/index.html")

# intent -> (weight, template); {cat}, {id}, {n}, {word} are filled at random
_PAGES = {
    "browse": (
        (4, "/c/{cat}"), (4, "/c/{cat}/p/{id}"), (3, "/search?q={word}&page={n}"), (2, "/c/{cat}?sort=price"),
        (2, "/p/{id}/reviews"), (1, "/deals/{cat}"), (1, "/compare?ids={id},{id}"),
    ),
    "purchase": (
        (4, "/cart"), (3, "/cart/add?sku={id}"), (3, "/checkout/shipping"), (3, "/checkout/payment"),
        (2, "/checkout/review"), (2, "/checkout/confirmation?order={id}"), (1, "/c/{cat}/p/{id}"),
        (1, "/coupon/apply?code={word}"),
    ),
    "support": (
        (4, "/account/orders"), (3, "/account/orders/{id}"), (3, "/help/{topic}"), (2, "/returns/start?order={id}"),
        (2, "/contact"), (2, "/orders/track?id={id}"), (1, "/help/search?q={word}"), (1, "/warranty/{cat}"),
    ),
    "other": (
        (3, "/blog/{word}"), (2, "/careers"), (2, "/stores/locator?zip={n}"), (2, "/about"),
        (2, "/blog/{n}/{word}"), (1, "/press/{n}"), (1, "/newsletter/subscribe"), (1, "/c/{cat}"),
    ),
}
_TOPICS = ("shipping", "returns", "payment", "warranty", "account", "delivery-times")
_WORDS = ("red", "cheap", "wireless", "gift", "kids", "organic", "pro", "mini", "sale", "new")


def _fill(template: str, rng: random.Random) -> str:
    return template.format(cat=rng.choice(_CATEGORIES), id=rng.randrange(10_000, 99_999), n=rng.randrange(1, 20),
                           word=rng.choice(_WORDS), topic=rng.choice(_TOPICS))


def _page(intent: str, rng: random.Random) -> str:
    weights, templates = zip(*_PAGES[intent])
    return _fill(rng.choices(templates, weights)[0], rng)


def generate_sessions(n: int, seed: int = 0, sites: int = 3, mean_len: float = 12.0, max_len: int = 60,
                      noise: float = 0.25, shared: float = 0.2,
                      intents: Sequence[str] = INTENTS) -> List[Tuple[List[str], str]]:
    """``n`` sessions ``(urls, intent)``, intents in equal shares (shuffled), fixed by ``seed``.

    Args:
        n (int): number of sessions.
        seed (int): random seed. Default: ``0``
        sites (int): number of shops (hosts ``shop1.example.com`` ...). Default: ``3``
        mean_len (float): mean session length before the cut. Default: ``12.0``
        max_len (int): longest session generated. Default: ``60``
        noise (float): per-visit probability of a page of another intent. Default: ``0.25``
        shared (float): per-visit probability of a shared page (home, login, search). Default: ``0.2``
        intents (sequence of str): the intents, a subset of :data:`INTENTS`. Default: all four
    """
    if n < 0 or sites < 1 or mean_len < 1 or max_len < 1 or not 0 <= noise <= 1 or not 0 <= shared <= 1:
        raise ValueError(f"generate_sessions: bad arguments n={n}, sites={sites}, mean_len={mean_len}, "
                         f"max_len={max_len}, noise={noise}, shared={shared}")
    unknown = [i for i in intents if i not in _PAGES]
    if unknown:
        raise ValueError(f"unknown intent(s) {unknown}; valid intents: {', '.join(INTENTS)}")
    rng = random.Random(seed)
    labels = [intents[i % len(intents)] for i in range(n)]
    rng.shuffle(labels)
    p_stop = 1.0 / mean_len
    out = []
    for intent in labels:
        host = f"http://shop{rng.randrange(1, sites + 1)}.example.com"
        length = 1
        while length < max_len and rng.random() > p_stop:
            length += 1
        urls = [host + "/"] if rng.random() < 0.5 else []
        while len(urls) < length:
            r = rng.random()
            if r < shared:
                path = _fill(rng.choice(_SHARED), rng)
            elif r < shared + noise:
                path = _page(rng.choice([i for i in INTENTS if i != intent]), rng)
            else:
                path = _page(intent, rng)
            urls.append(host + path)
        out.append((urls, intent))
    return out


def write_sessions(path: str, sessions: Sequence[Tuple[Sequence[str], str]], layout: str = "wide", *,
                   new_file: bool = False) -> str:
    """Write ``sessions`` as format (a): ``.jsonl`` (one ``{"urls", "label"}`` object per line), or ``.csv``
    with ``layout="wide"`` (columns ``label,urls``, urls a JSON array) or ``"long"`` (``session,url,label``,
    one visit per row). ``new_file``: create ``path``, and fail (FileExistsError) if anything, a link
    included, is already there. Returns ``path``."""
    ext = os.path.splitext(path)[1].lower()
    mode = "x" if new_file else "w"
    if ext == ".jsonl":
        with open(path, mode, encoding="utf-8") as fh:
            for urls, label in sessions:
                fh.write(json.dumps({"urls": list(urls), "label": label}) + "\n")
        return path
    if ext != ".csv":
        raise ValueError(f"write_sessions: {path!r} should end in .jsonl or .csv")
    if layout not in ("wide", "long"):
        raise ValueError(f"write_sessions: layout {layout!r}; expected 'wide' or 'long'")
    with open(path, mode, encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        if layout == "wide":
            w.writerow(["label", "urls"])
            for urls, label in sessions:
                w.writerow([label, json.dumps(list(urls))])
        else:
            w.writerow(["session", "url", "label"])
            for k, (urls, label) in enumerate(sessions):
                for u in urls:
                    w.writerow([f"s{k}", u, label])
    return path


def main(argv=None) -> int:
    """``python -m actadapt.experiments.data.url_sessions OUT.jsonl|OUT.csv [--n N] [--seed S] [--layout long]``"""
    import argparse

    p = argparse.ArgumentParser(prog="python -m actadapt.experiments.data.url_sessions",
                                description="write synthetic four-intent web sessions (format (a) of Table 4)")
    p.add_argument("out", help="output file: .jsonl, or .csv")
    p.add_argument("--n", type=int, default=2000, help="number of sessions (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--noise", type=float, default=0.25, help="per-visit chance of another intent's page (default 0.25)")
    p.add_argument("--layout", choices=("wide", "long"), default="wide", help="CSV layout (default wide)")
    args = p.parse_args(argv)
    try:
        write_sessions(args.out, generate_sessions(args.n, seed=args.seed, noise=args.noise), args.layout,
                       new_file=True)
    except FileExistsError:
        print(f"error: {args.out} already exists; this tool never overwrites a file: choose a new name")
        return 2
    except (ValueError, OSError) as err:
        print(f"error: {err}")
        return 2
    print(f"wrote {args.n} sessions to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
