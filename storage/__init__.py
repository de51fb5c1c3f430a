"""The foundation floor: what every other package stands on, and nothing above it.

- `storage.errors` — `UserError`, the one exception meaning "the input is wrong".
- `storage.files` — the one storage layer: a local path, NFS, ``s3://`` or ``gs://`` as a
  `pyarrow.fs` filesystem; atomic (create-only) publish; directory publish/fetch; the one
  URI join.
- `storage.layout` — `SweepLayout`, every path under ``<storage>/<sweep>/``.
- `storage.schema` — the results contract: columns, logical key, metric and split registry.
- `storage.results` — the results store: the fragment writer and the one deduplicating
  reader, which reports conflicts, stray files and unreadable fragments.

`orchestrator`, `trainers` and `evaluation` import this package; it imports none of them.
"""
