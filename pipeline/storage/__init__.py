"""Where the data root's files live and how each is written: names (`layout`), atomic writes
(`atomic`), Parquet parts and their checksums (`parquet_io`), content fingerprints
(`fingerprint`), locks (`locking`) and the run journal (`journal`). Nothing here knows a data rule.
"""
