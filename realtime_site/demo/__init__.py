"""The demo project's own data: the resource ``res`` its pages show.

An app of the demo, not of ``selector_app``, so that host sites, which do not
install it, get no demo rows in their databases.
"""
