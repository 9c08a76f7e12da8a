"""Comparing finished runs: reading them back from MLflow (:mod:`cl_nlp.comparison.runs`),
grouping and checking them (:mod:`cl_nlp.comparison.comparison`), the summary table
(:mod:`cl_nlp.comparison.summary_table`) and the figures (:mod:`cl_nlp.comparison.plots`).
"""
