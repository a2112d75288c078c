"""What exists: the lockfile, versions on disk, manifests, the journal of paid-for work.

Imports project (the model) and providers (image types); knows nothing of plans or runs.
"""
