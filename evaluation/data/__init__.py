"""Data for every task: Hub and local-mirror loaders, native formats, fixtures, sampler.

Import from the submodules (`evaluation.data.loaders`, `.fixtures`, `.multitask`,
`.retrieval`, `.examples`); this package file stays import-light.
"""
