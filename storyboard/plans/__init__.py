"""Plans: fingerprints, the planner, batching, saved plans; a plan is a plain value.

Imports project, providers (capabilities only) and state (the lockfile, versions, journal).
"""
