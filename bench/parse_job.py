#!/usr/bin/env python
"""The parse ceiling: pyarrow's CSV reader on every bronze file, every column as a string.

    python bench/parse_job.py --bronze DIR/bronze

No cleaning, no output: the fastest any CSV -> anything job built on pyarrow could hope to be.
The reader options are the pipeline's own (pipeline/bronze/reader.py): quoted newlines allowed, empty
lines skipped, no value turned into null; files are read one after the other, with pyarrow's
threads on.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as k  # noqa: E402


def parse(path: Path) -> int:
    with open(path, "rb") as handle:
        width = len(handle.readline().split(b","))  # the generator's headers hold no quoted comma
    names = [f"c{i}" for i in range(width)]
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    return table.num_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bronze", required=True, type=Path)
    args = parser.parse_args(argv)
    files, _ = k.input_files(args.bronze)
    started = time.monotonic()
    rows = sum(parse(f.path) for f in files)
    print(f"pyarrow {pa.__version__}: parsed {rows:,} records in {len(files)} files in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
