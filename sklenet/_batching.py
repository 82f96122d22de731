"""In-memory mini-batching for skorch.

skorch's default ``DataLoader`` fetches samples one at a time through
``Dataset.__getitem__`` and collates them; for a network as small as LeNet-5 that
per-sample Python work costs as much as the arithmetic. Here a batch is one
indexing operation on a preloaded tensor, with the same shuffling a
``RandomSampler`` driven by the same generator would produce.
"""

import math

import torch
from torch.utils.data import Dataset

__all__ = ["TensorSubset", "BatchIterator", "ImageAugmentation", "auto_batch_size"]


class TensorSubset(Dataset):
    """Rows ``indices`` of the tensors ``X`` and ``y``, without copying them.

    Parameters
    ----------
    X : torch.Tensor
        All samples, first dimension indexing them.
    y : torch.Tensor or None
        Targets aligned with ``X``.
    indices : torch.Tensor of int64 or None
        The rows that belong to this subset; ``None`` means all rows.
    sample_weight : torch.Tensor or None
        Weights aligned with ``X``; when given, a sample is
        ``({"X": x, "sample_weight": w}, y)``, the form skorch passes on to
        ``infer`` and ``get_loss``.
    """

    def __init__(self, X, y=None, indices=None, sample_weight=None):
        self.X = X
        self.y = y
        self.indices = indices
        self.sample_weight = sample_weight

    def __len__(self):
        return len(self.X) if self.indices is None else len(self.indices)

    def __getitem__(self, i):
        """Sample(s) ``i``; ``i`` may be an int, a slice or a tensor of positions."""
        rows = i if self.indices is None else _take(self.indices, i)
        X = _take(self.X, rows)
        if self.sample_weight is not None:
            X = {"X": X, "sample_weight": _take(self.sample_weight, rows)}
        return X, torch.empty(0) if self.y is None else _take(self.y, rows)


def _take(tensor, rows):
    """``tensor[rows]``; ``index_select`` for a vector of positions.

    Advanced indexing gathers a batch of 128 images ~10x slower than
    ``index_select`` on CPU (65 vs 6 us), the same rows either way.
    """
    if isinstance(rows, torch.Tensor) and rows.dim() == 1:
        return tensor.index_select(0, rows)
    return tensor[rows]


class BatchIterator:
    """Iterate over a :class:`TensorSubset` in mini-batches.

    Each pass (epoch) draws a fresh permutation from a generator seeded once
    with ``seed``, exactly as ``torch.utils.data.RandomSampler(dataset,
    generator=torch.Generator().manual_seed(seed))`` would order the samples.

    Parameters
    ----------
    dataset : TensorSubset
        The samples.
    batch_size : int
        Samples per batch; the last batch may be smaller.
    shuffle : bool, default=False
        Visit the samples in a new random order each epoch.
    seed : int, default=0
        Seed of the generator used for shuffling and ``transform``.
    transform : callable or None, default=None
        ``transform(X_batch, generator)`` applied to each training batch
        (data augmentation).
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=0, transform=None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self):
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                Xb, yb = self.dataset[start:start + self.batch_size]
            else:
                Xb, yb = self.dataset[order[start:start + self.batch_size]]
            if self.transform is not None:
                if isinstance(Xb, dict):
                    Xb = dict(Xb, X=self.transform(Xb["X"], self.generator))
                else:
                    Xb = self.transform(Xb, self.generator)
            yield Xb, yb
        if order is not None:
            # RandomSampler ends each pass with a draw for its remainder
            # (``randperm(n)[:0]``); mirror it so that every epoch, not just the
            # first, visits the samples in the order the DataLoader would.
            torch.randperm(n, generator=self.generator)


def auto_batch_size(n_samples):
    """``batch_size="auto"``: the power of two nearest ``n_samples / 200``, in [32, 256].

    About 200 steps per epoch where that gives batches of 32 to 256; small data
    sets get batches of 32 (1,077 digits: 34 steps per epoch), large ones 256
    (Fashion-MNIST's 48,000 training images: 188 steps).

    >>> [auto_batch_size(n) for n in (1_077, 10_000, 48_000, 1_000_000)]
    [32, 64, 256, 256]
    """
    if n_samples <= 0:
        return 32
    return int(min(256, max(32, 2 ** round(math.log2(max(n_samples, 1) / 200)))))


class ImageAugmentation:
    """Light image augmentation: random translations, horizontal flips, erasing.

    Parameters
    ----------
    max_shift : int, default=0
        Each image moves by up to this many pixels along each axis; the pixels
        uncovered are filled with zeros (the background of MNIST-like data).
    flip : bool, default=False
        Mirror each image left-right with probability 0.5.
    erasing : float, default=0.0
        Probability of setting a random rectangle of each image to zero (the
        background), after the shift and the flip (random erasing / cutout).
        The rectangle covers 2-33% of the image, with an aspect ratio between
        0.3 and 3.3 (torchvision's ``RandomErasing`` defaults).
    """

    #: Area (fraction of the image) and log aspect ratio of erased rectangles.
    ERASE_SCALE = (0.02, 0.33)
    ERASE_LOG_RATIO = (math.log(0.3), math.log(3.3))

    def __init__(self, max_shift=0, flip=False, erasing=0.0):
        self.max_shift = max_shift
        self.flip = flip
        self.erasing = erasing

    def __call__(self, X, generator):
        if self.max_shift:
            X = self._shift(X, generator)
        if self.flip:
            mirror = torch.rand(len(X), generator=generator) < 0.5
            X = torch.where(mirror.view(-1, 1, 1, 1), X.flip(-1), X)
        if self.erasing:
            X = self._erase(X, generator)
        return X

    def _erase(self, X, generator):
        n, _, h, w = X.shape
        u = torch.rand(n, 5, generator=generator)
        lo, hi = self.ERASE_SCALE
        area = (lo + (hi - lo) * u[:, 0]) * (h * w)
        ratio = torch.exp(self.ERASE_LOG_RATIO[0]
                          + (self.ERASE_LOG_RATIO[1] - self.ERASE_LOG_RATIO[0]) * u[:, 1])
        eh = (area * ratio).sqrt().round().clamp(1, h)
        ew = (area / ratio).sqrt().round().clamp(1, w)
        top = (u[:, 2] * (h - eh + 1)).floor().view(n, 1, 1, 1)
        left = (u[:, 3] * (w - ew + 1)).floor().view(n, 1, 1, 1)
        rows = torch.arange(h).view(1, 1, h, 1)
        cols = torch.arange(w).view(1, 1, 1, w)
        mask = ((rows >= top) & (rows < top + eh.view(n, 1, 1, 1))
                & (cols >= left) & (cols < left + ew.view(n, 1, 1, 1))
                & (u[:, 4] < self.erasing).view(n, 1, 1, 1))
        return X.masked_fill(mask, 0)

    def _shift(self, X, generator):
        s = self.max_shift
        n, _, h, w = X.shape
        padded = torch.nn.functional.pad(X, (s, s, s, s))
        dy = torch.randint(0, 2 * s + 1, (n, 1, 1), generator=generator)
        dx = torch.randint(0, 2 * s + 1, (n, 1, 1), generator=generator)
        rows = torch.arange(h).view(1, h, 1) + dy
        cols = torch.arange(w).view(1, 1, w) + dx
        # Channels-last gather: one advanced index picks a (h, w) window per image.
        windows = padded.permute(0, 2, 3, 1)[torch.arange(n).view(n, 1, 1), rows, cols]
        return windows.permute(0, 3, 1, 2).contiguous()
