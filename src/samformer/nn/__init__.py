"""The networks: SAMformer, its hand-written fused pass, σReparam, quantile heads, and k models stacked as one
(`stackable`: which networks may share a stack).

Owns what a forward (and hand-written backward) pass computes; knows nothing of files, frames or training loops.
May import: `samformer.errors` and torch. Nothing else of samformer.
"""
