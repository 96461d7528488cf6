"""The ``dbtproof`` command line: clean, watch, doctor, evidence."""
