"""Static vs dynamic masking for masked-language-model (MLM) pre-training: BERT vs RoBERTa.

BERT (Devlin et al. 2019) picks 15% of the tokens of a sequence; of those, 80% become ``[MASK]``, 10% a random
token and 10% stay unchanged, and the model must predict the original token at every picked position. BERT draws
this ONCE per sequence while preparing the data and reuses the masked copy in every epoch ("static" masking; the
original duplicated the data 10 times with 10 different masks). RoBERTa (Liu et al. 2019) applies the same rule but
draws it anew every time the sequence is fed to the model ("dynamic" masking). RoBERTa's Table 1 (BERT-base, median
of 5 runs) reports SQuAD 2.0 F1 / MNLI-m / SST-2 of 76.3 / 84.3 / 92.8 for the reference BERT, 78.3 / 84.3 / 92.5
static and 78.7 / 84.0 / 92.9 dynamic: "comparable or slightly better".

Three modules:

* :mod:`~dynmask_core.lessons.mlm.masking`: the masking rule itself (:func:`mask_tokens`, :func:`mask_epochs`,
  :func:`mask_text`), seeded so every draw reproduces: the ``static`` recipe returns the same draw for every epoch,
  ``dynamic`` derives a fresh draw from ``(seed, epoch)``. ``python -m dynmask_core mlm-mask`` prints it per epoch.
* :mod:`~dynmask_core.lessons.mlm.lab`: a small lab (:func:`run_lab`): a tiny BERT trained from scratch twice on
  Python's own help texts (``pydoc_data.topics``), once per recipe, with the same seed, initial weights, batch
  order, dropout and budget, evaluated on the same fixed masking of a held-out set.
* :mod:`~dynmask_core.lessons.mlm.runs`: what a lab run is (:class:`LabConfig`, :class:`RecipeRun`,
  :class:`LabResult`) and its file, ``metrics.json`` (:func:`save_run`, :func:`parse_run` with its schema,
  :func:`load_run`). ``python -m dynmask_core mlm-lab`` writes it.

Everything here is plain torch + transformers (no Streamlit); the GPU is used when present.
"""

from dynmask_core.lessons.mlm.lab import CLS, SEP, build_corpus, run_lab, train_recipe
from dynmask_core.lessons.mlm.masking import (
    ACTIONS,
    MAX_EPOCHS,
    RECIPES,
    SPLIT,
    TextMasking,
    mask_epochs,
    mask_text,
    mask_tokens,
)
from dynmask_core.lessons.mlm.runs import MAX_RUN_BYTES, LabConfig, LabResult, RecipeRun, load_run, parse_run, save_run
from dynmask_core.masks.plan import MAX_SEED

__all__ = [
    "ACTIONS", "CLS", "MAX_EPOCHS", "MAX_RUN_BYTES", "MAX_SEED", "RECIPES", "SEP", "SPLIT", "LabConfig", "LabResult",
    "RecipeRun", "TextMasking", "build_corpus", "load_run", "mask_epochs", "mask_text", "mask_tokens", "parse_run",
    "run_lab", "save_run", "train_recipe",
]
