"""The ``medseg`` command line: parsing and printing only; the work is in the library."""
