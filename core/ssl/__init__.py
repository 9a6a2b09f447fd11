"""Self-supervised backbone training on a user's own images (rotation prediction, SimCLR,
pseudo-label metric learning). Import :mod:`core.ssl.train` for ``train_backbone``; importing
:mod:`core.ssl.arch` registers the small-image architectures so their checkpoints load."""
