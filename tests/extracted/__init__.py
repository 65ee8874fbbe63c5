"""Tests of the extracted services beyond the shared contract."""
