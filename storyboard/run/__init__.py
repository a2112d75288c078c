"""Carrying out a plan: preflight, execution, assembly of the new version, the run lock, events.

Imports everything below it (project, providers, state, plans, deliver); nothing imports it
but the front door (storyboard.api).
"""
