"""The book's evidence, apart from what it teaches: the measurements, verdicts, claims, tables and figures each
chapter's hidden cells call (one module per chapter: ch1 ... ch5), and what several chapters share (report, metrics,
figures). The core package below it (models, losses, training, data, checkpoints) never imports from here."""
