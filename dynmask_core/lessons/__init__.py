"""Lessons: small, self-contained experiments about masking (``mlm``: BERT's static vs RoBERTa's dynamic masking)."""
