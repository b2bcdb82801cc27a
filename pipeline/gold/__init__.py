"""Silver -> gold: exactly-once dedup and aggregation into the state, then the gold tables.

Each rule of the data contract (docs/CONTRACT.md), the function that implements
it and the tests that pin it:

- dedup on the key ([gold] dedup_key, default order_id): the first valid occurrence in input order wins,
  across runs; hashes never merge two keys: `dedup.first_wins`; tested in test_dedup, test_gold_units,
  test_dedup_key.
- files ingested one per run give the gold of one run over all; a late file that sorts earlier rebuilds the
  state in input order: `merge.stale_state_reason`, `merge.reset_stale_state`; tested in test_change_safety,
  test_gold.
- exactly once: a crash at any instant and a re-run give the gold of a run that never crashed:
  `merge.merge_silver` (commit order), `state_records`; tested in test_gold_crash.
- a silver part whose bytes or settings changed is never merged: `merge.verify_silver_part`; tested in
  test_faults, test_change_safety.
- exact sums: decimal(38, 2) money, counts and quantities by each grain of `aggregates.GRAINS` (date,
  region, category; product; file): `aggregates.aggregate_orders`, `aggregates.sum_aggregates`; tested in
  test_gold_units.
- the eight gold tables: keys, ranks and ties, avg_discount half up to 4 places, data_quality:
  `tables.build_gold_tables`; tested in test_gold_units, test_gold, test_gold_with_pandas.
- upsert and overwrite give identical tables; publication is atomic and idempotent: `tables.publish`,
  `tables.upsert`; tested in test_gold, test_gold_units, test_gold_crash.
- one Silver -> Gold at a time per data root, and gold published once per set of inputs:
  `step.merge_and_publish`; tested in test_change_safety, test_scheduler.
- one gold owner across hosts: `owner.claim`, `owner.refuse_unless_gold_owner`; tested in test_luigi_native.
- a state of another format is refused with the command that rebuilds it: `state_records.check_format`; tested
  in test_gold_units.
"""
