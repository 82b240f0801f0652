"""aecourse: the package behind the autoencoder course.

Importing it only defines things: no downloads, no seeding, no printing.
Each module has one job; the chapters of the book call them for the mechanics.
"""

__version__ = "0.1.0"
