"""The rights: data-subject requests and their clock, legal holds, the erasure journal and its
reapplication, subject references, Art. 19 notices."""
