"""The data sets of the paper's tables, one loader per data set: strict parsing, errors that name the file.

* :mod:`.simulation`: Table 1's teacher networks and the data they label (built in);
* :mod:`.mnist`: MNIST in its IDX layout (Table 2);
* :mod:`.moviereview`, :mod:`.wordvectors`: the movie-review sentences and word2vec/GloVe vectors (Table 3);
* :mod:`.urls`: URL sessions and the ISCX-URL-2016 stand-in (Table 4); :mod:`.url_sessions` writes synthetic
  session files (``python -m actadapt.experiments.data.url_sessions OUT.jsonl``).

Nothing is downloaded: a data root is given by ``--data-dir`` or ``$ACTADAPT_DATA``.
"""
