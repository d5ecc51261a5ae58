"""Client partitions: which clips each simulated client holds.

A *partition* is a ``dict`` from client id (a string; ids sort in client
order) to the sorted integer indices, into the list of clips it was made
from, of the clips that client holds.  Every partitioner here puts every clip
in exactly one client, returns no empty client, and is a pure function of
its arguments: the same ``seed`` gives the same partition.

Partitioners, in the papers' words:

* :func:`iid` -- paper 001's "random assignment": clips shuffled and dealt
  into ``k`` near-equal clients.
* :func:`single_emotion` -- paper 001's "single emotion per client".
* :func:`by_speaker` -- paper 000: each CREMA-D speaker is a client; with
  :func:`split_speakers` giving the 73 training / 18 validation speakers.
* :func:`class_balanced` -- paper 004: "training data evenly partitioned
  for four classes into each set of clients".
* :func:`dirichlet` -- label skew of tunable strength (Hsu et al. 2019),
  not in the seed papers; for probing non-IID-ness between ``iid`` and
  ``single_emotion``.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from tff_ser.corpus.records import EMOTIONS_4, EMOTIONS_6, Clip

#: client id -> sorted int64 indices into the clip list.
Partition = Dict[str, np.ndarray]


# --------------------------------------------------------------------------
# validation and small helpers
# --------------------------------------------------------------------------

def _check_clips(clips: Sequence[Clip]) -> int:
    if len(clips) == 0:
        raise ValueError("no clips to partition; load the corpus first")
    return len(clips)


def _check_k(k, n_clips: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"the number of clients k must be an integer; got {k!r}")
    if k < 1:
        raise ValueError(f"the number of clients k must be at least 1; got {k}")
    if k > n_clips:
        raise ValueError(f"k={k} clients cannot each hold a clip when there are only "
                         f"{n_clips} clips; choose k <= {n_clips}")
    return int(k)


def _emotion_indices(clips: Sequence[Clip], emotions: Sequence[str]) -> Dict[str, np.ndarray]:
    """Indices of each emotion's clips, in ``emotions`` order, absent ones left out."""
    emotions = tuple(emotions)
    stray = sorted({c.emotion for c in clips} - set(emotions))
    if stray:
        raise ValueError(f"clips with emotions {stray} are not among the classes {emotions}; "
                         "filter the clips to the classes you train on first")
    labels = np.array([c.emotion for c in clips])
    found = {e: np.flatnonzero(labels == e) for e in emotions}
    return {e: idx for e, idx in found.items() if len(idx)}


def client_ids(k: int) -> List[str]:
    """``["client_00", "client_01", ...]``: zero-padded so string order is client order."""
    width = max(2, len(str(k - 1)))
    return [f"client_{i:0{width}d}" for i in range(k)]


def _as_partition(groups: Sequence[np.ndarray], ids: Optional[Sequence[str]] = None) -> Partition:
    ids = client_ids(len(groups)) if ids is None else list(ids)
    return {cid: np.sort(np.asarray(g, dtype=np.int64)) for cid, g in zip(ids, groups)}


def check_partition(partition: Mapping[str, np.ndarray], num_clips: int, *,
                    require_cover: bool = True) -> None:
    """Raise ValueError unless ``partition`` is a valid partition of ``num_clips`` clips.

    Valid: no empty client, indices in ``[0, num_clips)``, no clip in two
    clients (or twice in one), and, with ``require_cover``, every clip in
    some client.
    """
    seen = np.zeros(num_clips, dtype=np.int64)
    for cid, idx in partition.items():
        idx = np.asarray(idx)
        if idx.size == 0:
            raise ValueError(f"client {cid!r} holds no clips")
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"client {cid!r}: indices must be a 1-D integer array")
        if idx.min() < 0 or idx.max() >= num_clips:
            raise ValueError(f"client {cid!r} has indices outside [0, {num_clips})")
        np.add.at(seen, idx, 1)
    if (seen > 1).any():
        raise ValueError(f"{int((seen > 1).sum())} clips are held more than once")
    if require_cover and (seen == 0).any():
        raise ValueError(f"{int((seen == 0).sum())} clips are in no client")


# --------------------------------------------------------------------------
# partitioners
# --------------------------------------------------------------------------

def iid(clips: Sequence[Clip], k: int, *, seed: int = 0) -> Partition:
    """Paper 001's "random assignment": shuffle, then split into ``k`` near-equal clients.

    Client sizes differ by at most one clip.  Every client sees all emotions
    and speakers in roughly corpus proportions.

    Parameters
    ----------
    clips : sequence of Clip
    k : int
        Number of clients, ``1 <= k <= len(clips)``.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    dict
        ``"client_00" ...`` -> sorted indices into ``clips``.

    Examples
    --------
    >>> from tff_ser.corpus.records import Clip
    >>> clips = [Clip(f"/{i}.wav", "1001", "NEU", "IEO") for i in range(5)]
    >>> [len(v) for v in iid(clips, 2, seed=0).values()]
    [3, 2]
    """
    n = _check_clips(clips)
    k = _check_k(k, n)
    order = np.random.default_rng(seed).permutation(n)
    return _as_partition(np.array_split(order, k))


def _allocate_clients(sizes: Sequence[int], k: int) -> List[int]:
    """Clients per group, at least one each, minimising the largest client.

    Each extra client goes to the group whose clients are currently largest
    (D'Hondt allocation); ties go to the earlier group.
    """
    counts = [1] * len(sizes)
    for _ in range(k - len(sizes)):
        load = [s / c for s, c in zip(sizes, counts)]
        counts[int(np.argmax(load))] += 1
    return counts


def single_emotion(clips: Sequence[Clip], k: int, *, emotions: Sequence[str] = EMOTIONS_4,
                   seed: int = 0) -> Partition:
    """Paper 001's "single emotion" split: each client holds exactly one emotion.

    With ``k`` equal to the number of emotions present (4 in the paper) there
    is one client per emotion.  With more clients, each emotion's clips are
    shuffled and split over several clients, the clients given to emotions so
    that client sizes are as even as possible (larger emotions get more
    clients); every client still holds one emotion only.  Fewer clients than
    emotions is refused: some emotion would then need to share a client.

    Clients are numbered emotion by emotion in ``emotions`` order.

    Parameters
    ----------
    clips : sequence of Clip
        Every clip's emotion must be in ``emotions``.
    k : int
        Number of clients, at least the number of emotions present.
    emotions : sequence of str
        Class codes, in label order.
    seed : int
        Seed of the within-emotion shuffles.
    """
    n = _check_clips(clips)
    k = _check_k(k, n)
    by_emotion = _emotion_indices(clips, emotions)
    if k < len(by_emotion):
        raise ValueError(
            f"single_emotion needs at least one client per emotion: the clips hold "
            f"{len(by_emotion)} emotions {tuple(by_emotion)} but k={k}; with fewer clients "
            "some client would hold two emotions (or some emotion no client)")
    counts = _allocate_clients([len(v) for v in by_emotion.values()], k)
    rng = np.random.default_rng(seed)
    groups = []
    for idx, c in zip(by_emotion.values(), counts):
        groups.extend(np.array_split(rng.permutation(idx), c))
    return _as_partition(groups)


def class_balanced(clips: Sequence[Clip], k: int, *, emotions: Sequence[str] = EMOTIONS_4,
                   seed: int = 0) -> Partition:
    """Paper 004: each class's clips evenly partitioned over the ``k`` clients.

    Each emotion's clips are shuffled and dealt round-robin; the deal goes
    on from client to client across emotions, so per-client counts of every
    emotion differ by at most one, and so do client totals.

    Parameters
    ----------
    clips : sequence of Clip
    k : int
        Number of clients, ``1 <= k <= len(clips)``.
    emotions : sequence of str
        Class codes; every clip's emotion must be one of them.
    seed : int
        Seed of the shuffles.
    """
    n = _check_clips(clips)
    k = _check_k(k, n)
    rng = np.random.default_rng(seed)
    owner = np.empty(n, dtype=np.int64)
    dealt = 0
    for idx in _emotion_indices(clips, emotions).values():
        owner[rng.permutation(idx)] = (dealt + np.arange(len(idx))) % k
        dealt += len(idx)
    return _as_partition([np.flatnonzero(owner == c) for c in range(k)])


def dirichlet(clips: Sequence[Clip], k: int, alpha: float, *,
              emotions: Sequence[str] = EMOTIONS_4, seed: int = 0, min_size: int = 1,
              max_tries: int = 1000) -> Partition:
    """Label-skewed clients: each class spread over clients by Dirichlet(alpha) shares.

    For every emotion, client shares ``p ~ Dir(alpha, ..., alpha)`` are drawn
    and the emotion's shuffled clips cut in those proportions (Hsu et al.
    2019, "Measuring the effects of non-identical data distribution", in the
    per-class form of Yurochkin et al. 2019).  Small ``alpha`` (0.1) gives
    clients dominated by one or two emotions; large ``alpha`` (100) is close
    to :func:`class_balanced`.  A draw in which some client holds fewer than
    ``min_size`` clips is redrawn, up to ``max_tries`` times.

    Parameters
    ----------
    clips : sequence of Clip
    k : int
        Number of clients.
    alpha : float
        Dirichlet concentration, > 0.
    emotions : sequence of str
        Class codes; every clip's emotion must be one of them.
    seed : int
        Seed of the draws and shuffles.
    min_size : int
        Fewest clips any client may hold (>= 1).
    max_tries : int
        Redraws before giving up with a ValueError.
    """
    n = _check_clips(clips)
    k = _check_k(k, n)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) \
            or not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"the Dirichlet concentration alpha must be a positive number; got {alpha!r}")
    if isinstance(max_tries, bool) or not isinstance(max_tries, (int, np.integer)) or max_tries < 1:
        raise ValueError(f"max_tries must be an integer >= 1; got {max_tries!r}")
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise ValueError(f"min_size must be an integer >= 1; got {min_size!r}")
    if min_size * k > n:
        raise ValueError(f"{k} clients of at least {min_size} clips need {min_size * k} clips; "
                         f"there are {n}")
    by_emotion = list(_emotion_indices(clips, emotions).values())
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        owner = np.empty(n, dtype=np.int64)
        for idx in by_emotion:
            shares = rng.dirichlet(np.full(k, float(alpha)))
            cuts = np.round(np.cumsum(shares)[:-1] * len(idx)).astype(np.int64)
            for client, part in enumerate(np.split(rng.permutation(idx), cuts)):
                owner[part] = client
        sizes = np.bincount(owner, minlength=k)
        if sizes.min() >= min_size:
            return _as_partition([np.flatnonzero(owner == c) for c in range(k)])
    raise ValueError(
        f"after {max_tries} Dirichlet draws (alpha={alpha}, k={k}) some client still held "
        f"fewer than {min_size} clips; use a larger alpha, fewer clients or a smaller min_size")


def by_speaker(clips: Sequence[Clip], speakers: Optional[Sequence[str]] = None) -> Partition:
    """Paper 000: one client per speaker, client id = speaker id.

    Deterministic (no seed): the grouping is fixed by the corpus.

    Parameters
    ----------
    clips : sequence of Clip
    speakers : sequence of str, optional
        Keep only these speakers' clients (e.g. the 73 training speakers of
        :func:`split_speakers`); every one must have clips.  Default: all.

    Returns
    -------
    dict
        speaker id -> sorted indices of that speaker's clips, in speaker-id order.
    """
    _check_clips(clips)
    owners = np.array([c.speaker for c in clips])
    present = sorted(set(owners.tolist()))
    if speakers is None:
        chosen = present
    else:
        if isinstance(speakers, str):
            raise ValueError(f"speakers must be a list of speaker ids, not the string {speakers!r}")
        chosen = sorted(set(speakers))
        missing = sorted(set(chosen) - set(present))
        if missing:
            raise ValueError(f"speakers {missing[:10]}{' ...' if len(missing) > 10 else ''} "
                             "have no clips; pass speakers of these clips only")
        if not chosen:
            raise ValueError("speakers is empty; pass None for all speakers")
    return {s: np.flatnonzero(owners == s).astype(np.int64) for s in chosen}


def split_speakers(clips: Sequence[Clip], *, val_fraction: float = 0.2, seed: int = 0,
                   stratify_by_sex: Optional[bool] = None) -> Tuple[List[str], List[str]]:
    """Paper 000's speaker split: 80 % of speakers train, 20 % validate.

    On CREMA-D's 91 speakers this gives 73 training and 18 validation
    speakers (``round(91 * 0.2) = 18``).  Splitting speakers, not clips,
    keeps every validation voice unheard in training.

    Parameters
    ----------
    clips : sequence of Clip
    val_fraction : float
        Fraction of speakers held out for validation, in (0, 1); rounded to
        the nearest whole speaker.
    seed : int
        Seed of the draw.
    stratify_by_sex : bool, optional
        Draw the validation speakers from each sex in proportion (largest
        remainder), so that on CREMA-D both sides hold both sexes.
        ``None`` (default): stratify when every clip's ``sex`` is known.
        ``True``: require it.  ``False``: plain draw.

    Returns
    -------
    (train_speakers, val_speakers) : two sorted lists of speaker ids
    """
    _check_clips(clips)
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be strictly between 0 and 1; got {val_fraction!r}")
    sex_of: Dict[str, Optional[str]] = {}
    for c in clips:
        if sex_of.setdefault(c.speaker, c.sex) != c.sex:
            raise ValueError(f"speaker {c.speaker!r} has clips with different sex values "
                             f"({sex_of[c.speaker]!r}, {c.sex!r})")
    speakers = sorted(sex_of)
    n_val = int(round(len(speakers) * float(val_fraction)))
    if not 1 <= n_val <= len(speakers) - 1:
        raise ValueError(f"val_fraction={val_fraction} of {len(speakers)} speakers leaves "
                         f"{n_val} for validation; both sides need at least one speaker")
    known = all(s is not None for s in sex_of.values())
    if stratify_by_sex and not known:
        raise ValueError("stratify_by_sex=True but some clips have sex=None; "
                         "load the corpus with speaker sex or pass stratify_by_sex=False")
    rng = np.random.default_rng(seed)
    if stratify_by_sex is False or not known:
        val = rng.choice(speakers, size=n_val, replace=False).tolist()
    else:
        groups = {sex: [s for s in speakers if sex_of[s] == sex] for sex in sorted(set(sex_of.values()))}
        quota = {sex: n_val * len(g) / len(speakers) for sex, g in groups.items()}
        take = {sex: int(np.floor(q)) for sex, q in quota.items()}
        by_remainder = sorted(groups, key=lambda sex: (-(quota[sex] - take[sex]), sex))
        for sex in by_remainder[:n_val - sum(take.values())]:
            take[sex] += 1
        val = []
        for sex, members in groups.items():
            val += rng.choice(members, size=take[sex], replace=False).tolist()
    val_set = set(val)
    return [s for s in speakers if s not in val_set], sorted(val_set)


# --------------------------------------------------------------------------
# using and describing partitions
# --------------------------------------------------------------------------

def subset(clips: Sequence[Clip], indices: Sequence[int]) -> List[Clip]:
    """The clips at ``indices``, in that order."""
    return [clips[int(i)] for i in indices]


def split_clips(clips: Sequence[Clip], partition: Mapping[str, np.ndarray]) -> Dict[str, List[Clip]]:
    """Client id -> that client's clips (``subset`` applied to every client)."""
    return {cid: subset(clips, idx) for cid, idx in partition.items()}


def describe_partition(partition: Mapping[str, np.ndarray], clips: Sequence[Clip]) -> pd.DataFrame:
    """Clips per client per emotion, plus each client's total and number of speakers.

    Returns
    -------
    pandas.DataFrame
        One row per client (index ``client``), one column per emotion present
        (in :data:`EMOTIONS_6` order), then ``total`` and ``speakers``.
    """
    present = {clips[int(i)].emotion for idx in partition.values() for i in idx}
    columns = [e for e in EMOTIONS_6 if e in present] + sorted(present - set(EMOTIONS_6))
    rows = []
    for cid, idx in partition.items():
        held = subset(clips, idx)
        counts = Counter(c.emotion for c in held)
        rows.append({"client": cid, **{e: counts.get(e, 0) for e in columns},
                     "total": len(held), "speakers": len({c.speaker for c in held})})
    frame = pd.DataFrame(rows, columns=["client", *columns, "total", "speakers"])
    return frame.set_index("client")


#: Partitioners by name.  ``iid``, ``single_emotion`` and ``class_balanced``
#: take ``(clips, k, *, seed)``; ``dirichlet`` also ``alpha``; ``by_speaker``
#: takes ``(clips, speakers=None)`` and no seed.
PARTITIONERS: Dict[str, Callable[..., Partition]] = {
    "iid": iid,
    "single_emotion": single_emotion,
    "class_balanced": class_balanced,
    "dirichlet": dirichlet,
    "by_speaker": by_speaker,
}


def get_partitioner(name: str) -> Callable[..., Partition]:
    """The partitioner registered as ``name``; ValueError listing the known names."""
    try:
        return PARTITIONERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown partitioner {name!r}; known: {', '.join(PARTITIONERS)}") from None


def partition_clips(name: str, clips: Sequence[Clip], *, k: int = 4, alpha: float = 0.5,
                    seed: int = 0, emotions: Sequence[str] = EMOTIONS_4) -> Partition:
    """Partition ``clips`` with the partitioner registered as ``name``.

    Each partitioner gets the arguments among ``k``, ``alpha``, ``seed`` and
    ``emotions`` that its signature names (``by_speaker`` none of them), so a
    partitioner of your own is one entry in :data:`PARTITIONERS`:

    >>> PARTITIONERS["halves"] = lambda clips, *, seed=0: iid(clips, 2, seed=seed)  # doctest: +SKIP
    """
    import inspect
    fn = get_partitioner(name)
    offered = {"k": k, "alpha": alpha, "seed": seed, "emotions": tuple(emotions)}
    params = inspect.signature(fn).parameters
    return fn(clips, **{n: v for n, v in offered.items() if n in params})
