"""Pure domain logic of the pipeline: no Luigi imports, Arrow tables and plain values in and out."""
