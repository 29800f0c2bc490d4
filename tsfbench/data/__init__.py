"""Video data for accuracy runs: dataset readers (`datasets`), subsets (`subset`), frame and crop
positions (`sampling`), the test views (`video`) and synthetic videos (`synth`).

Import the module you need: this package re-exports nothing, so reading a CSV does not load
torch, and nothing here imports a decoder at module level (decord reads, PyAV writes).
"""
