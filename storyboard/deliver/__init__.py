"""Deliverables made from a version: pages, the PDF, the contact sheet.

Imports state (manifests) and base modules; knows nothing of providers or runs.
"""
