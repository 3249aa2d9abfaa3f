"""edgebatch: batch framework for IoT-scale data on Spark and Delta Lake.

This root package stays tiny on purpose: a device imports `edgebatch.edge` and
must not pay for anything else.
"""

__version__ = "0.1.0"
