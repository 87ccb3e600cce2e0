"""Planhat's open analytics API (activities, bulk, CSV stream, dimension data): items
translated into inbox messages (``items.py``), stored through the one inbox
(``services.py``), behind thin views (``views.py``)."""
