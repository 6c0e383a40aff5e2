"""Readers of alert sources (TNS, Gaia Science Alerts, GCN VOEvents): files in, plain rows out, no Django.

Each reader returns what it could read and one RowError per row it refused, with its line
number, so that a harvest loads the good rows and reports the others.
"""
