"""The `edgebatch` command line: an application shell that composes the parts.

The edge agent, the warehouse, the framework (and the scheduler and API as they come)
are libraries; this package only parses arguments, calls them and prints. It is the one
place that imports several parts at once.
"""
