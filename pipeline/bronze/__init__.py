"""Bronze -> silver: find, stage, scan, read and clean bronze files, and write silver and quarantine.

Each rule of the data contract (docs/CONTRACT.md), the function that implements
it and the tests that pin it:

- inputs: the glob under bronze/ (plain, .gz, .zst), natural order, nothing outside the folder, entries not
  read listed: `discovery.scan_bronze`, `discovery.natural_key`; tested in test_bronze_pipeline,
  test_hostile_input, test_operator_errors, test_compressed_input.
- compressed files read like CSV, memory bounded by a block: `compressed.stage_copy`, `silver.chunk_source`;
  tested in test_compressed_input.
- records end at LF outside quoted fields; the quote rules; empty lines skipped; a CR-only file fails:
  `chunking._RecordScanner`, `chunking.scan_file`, `chunking.read_header`; tested in test_chunking,
  test_line_endings.
- a file is never loaded whole: chunks of about chunk_rows records, numbered as in the whole file:
  `chunking.scan_file`; tested in test_chunking, test_bronze_pipeline.
- header names trimmed and lower-cased; required columns; duplicates; extra and missing optional columns:
  `header.layout_header`; tested in test_header_and_config, test_hostile_input.
- malformed_row: wrong field count, invalid UTF-8, NUL, a quote left open; raw text kept (also for a record
  the parser reads otherwise than the scan): `reader.parse_chunk`, `reader._parse_agreeing`, `chunking.split_fields`;
  tested in test_reader_triage, test_hostile_input.
- field rules: trimming, missing tokens, hard rules in order, soft defaults, numbers, dates, aliases, e-mail,
  product_key: `cleaning.clean_records` (with `cleaning._clean_sale_date`, `cleaning._clean_alias`,
  `cleaning._clean_email`, `cleaning._clean_product`); tested in test_cleaning_rules, test_cleaning_oracle,
  test_date_parsing.
- exact money: unit_price to the cent half up, revenue and discount amounts: `cleaning._money`; tested in
  test_cleaning_rules, test_gold_units.
- the dedup key ([gold] dedup_key, from cleaned values), its XXH64 key_hash and the silver bucket:
  `hashing.key_text`, `hashing.xxh64`, `hashing.bucket_of`; tested in test_hashing, test_dedup_key.
- nothing is lost: read = silver + quarantine, lineage source_file / source_row: `silver.assemble_chunk`,
  `silver.summarise_file`; tested in test_bronze_pipeline, test_hostile_input.
- a file changed after ingest is refused until --reprocess: `silver.ensure_unchanged`; tested in
  test_change_safety.
- many small files cleaned together give the per-file outputs: `small_files.process_small_files`; tested in
  test_small_files.
"""
