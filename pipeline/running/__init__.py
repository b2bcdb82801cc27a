"""What a run does around the layers: checks before it starts (`preflight`), maintenance commands
(`maintenance`), what is done and pending (`inventory`), the silver settings record
(`silver_settings`) and the progress line (`progress`). Imports bronze, gold and storage; nothing
below imports it.
"""
