"""The book's evidence, apart from what it teaches: the measurements, verdicts, claims, tables and figures each
chapter's hidden cells call (one module per chapter: ch1 ... ch5; one per other page that has its own: intro,
appendix_verdicts), and what several chapters share (report, metrics, figures). The core package below it (models,
losses, training, data, checkpoints) never imports from here."""
