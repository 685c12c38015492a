"""Inventory files shipped with splitnet (YAML); see runtime/inventory_file.py for the format."""
