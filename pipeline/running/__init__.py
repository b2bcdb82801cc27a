"""What a run does around the layers: checks before it starts (`preflight`), maintenance commands
(`maintenance`), what is done and pending (`inventory`), the silver settings record
(`silver_settings`), the progress line (`progress`), which settings the command line may set
(`overrides`) and the record and log of each run (`history`, `run_log`). Imports bronze, gold and storage; nothing
below imports it.
"""
