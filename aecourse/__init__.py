"""aecourse: the package behind the autoencoder course. Importing it only defines things: no downloads, no
seeding, no printing."""

__version__ = "0.1.0"
