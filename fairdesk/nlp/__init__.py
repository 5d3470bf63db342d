"""Complaint classification with spaCy: the only package that imports spacy."""

from fairdesk.nlp.classify import Classification, Classifier, load_classifier, load_pipeline

__all__ = ["Classification", "Classifier", "load_classifier", "load_pipeline"]
