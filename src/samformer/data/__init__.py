"""Series in, `SplitData` out: reading and validating CSV files and frames, the benchmark datasets by name,
the literature's splits with train-only scaling and window views, channel roles, frames as users have them.

May import: `samformer.errors`, `samformer.files`. Nothing of the networks, training or forecasting.
"""
