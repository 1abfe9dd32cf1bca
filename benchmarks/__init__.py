"""Side-by-side benchmarks of softmax_xp: ``python -m benchmarks [--quick]`` from the repo root.

Every figure of a section is measured in one process, interleaved (A B C A B C ...) after a
warm-up round, and reported as the median of the repeats and as ratios to other rows of the same
run, because the machines these run on are noisy and an absolute time alone means little.
"""
