"""dynmask lesson: BERT's static vs RoBERTa's dynamic masking (a picture over epochs, then a small training run).

The page's content is in ``dynmask_app/views/mlm.py``.
"""

from __future__ import annotations

from dynmask_app.views.mlm import render

render()
