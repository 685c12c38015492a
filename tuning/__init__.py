"""The tune stage: MetaSchedule databases for branch and head workloads, and their lookup."""

from .key import DatabaseMatch, TuningKey, find_database, key_for, tuning_root, untuned_note

__all__ = ["DatabaseMatch", "TuningKey", "find_database", "key_for", "tuning_root", "untuned_note"]
