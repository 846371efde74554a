"""Text classification of a batch job's rows at the model's own speed, with the outputs of its pipeline.

A transformers pipeline tokenises, collates and post-processes one text at a time in Python: on a small model that
costs more than the forward pass itself. Here the Rust tokenizer encodes a whole window of texts in one call, the
texts are sorted by token length so that each forward pass pads little, each forward pass takes as many texts as
fit in a token budget, and the scores of a pass come out of one array operation — by the pipeline's own rules
(truncation to the model's maximum length, the pipeline's softmax or sigmoid, the top label and its score), so a
batch job's row is the synchronous prediction of the same text (tests/registry/test_registry_batching.py).
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Iterator

import numpy as np

# Above this, transformers' tokenizers treat model_max_length as "no maximum" and do not truncate.
from transformers.tokenization_utils_base import LARGE_INTEGER


class BatchClassifier:
    """Classifies lists of texts like ``pipeline(texts)`` of a text-classification pipeline built by
    apps.registry.loading (truncating, default top_k and scores), in forward passes of sorted texts."""

    def __init__(self, pipeline):
        from tokenizers import Tokenizer
        from transformers.pipelines.text_classification import ClassificationFunction, sigmoid, softmax

        tokenizer, self.model = pipeline.tokenizer, pipeline.model
        config = self.model.config
        self.labels = config.id2label
        self.input_names = list(tokenizer.model_input_names)
        self.pad_id, self.pad_type_id = tokenizer.pad_token_id, tokenizer.pad_token_type_id
        # A copy: the pipeline's tokenizer re-configures its backend on every call, in whichever thread calls it.
        self.backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self.backend.no_padding()
        if tokenizer.model_max_length <= LARGE_INTEGER:
            # What `tokenizer(texts, truncation=True)` sets, the texts' own special tokens counted in.
            self.backend.enable_truncation(
                tokenizer.model_max_length, stride=0, strategy="longest_first", direction=tokenizer.truncation_side
            )
        else:
            self.backend.no_truncation()
        # TextClassificationPipeline.postprocess's default choice of score function.
        if config.problem_type == "regression":
            self.scores = None
        elif config.problem_type == "multi_label_classification" or config.num_labels == 1:
            self.scores = sigmoid
        elif config.problem_type == "single_label_classification" or config.num_labels > 1:
            self.scores = softmax
        else:
            self.scores = {ClassificationFunction.SIGMOID: sigmoid, ClassificationFunction.SOFTMAX: softmax}.get(
                getattr(config, "function_to_apply", None)
            )
        forward = inspect.signature(self.model.forward).parameters
        self.forward_options = {"use_cache": False} if "use_cache" in forward else {}

    @staticmethod
    def fits(pipeline) -> bool:
        """Whether the pipeline's tokenizer can be run directly (a fast tokenizer that pads)."""
        tokenizer = getattr(pipeline, "tokenizer", None)
        return (
            tokenizer is not None
            and getattr(tokenizer, "is_fast", False)
            and tokenizer.pad_token_id is not None
            and {"input_ids", "attention_mask"} <= set(tokenizer.model_input_names)
        )

    def __call__(self, texts: list[str], *, max_tokens: int) -> list[dict]:
        """``{"label", "score"}`` per text, in the order of ``texts``; forward passes of at most ``max_tokens``
        tokens (rows times the longest row), or one text alone when it is longer than that."""
        import torch

        # Without character offsets, which nothing here needs (tokenizers >= 0.21): a quarter faster.
        encode = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
        encodings = encode(texts)
        lengths = [len(encoding) for encoding in encodings]
        # Sorted by length, a pass pads each text only up to its neighbours' length.
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        outputs: list[dict] = [{}] * len(texts)
        for batch in _token_batches(order, lengths, max_tokens):
            inputs = self._tensors([encodings[index] for index in batch], lengths[batch[-1]])
            with torch.inference_mode():
                logits = self.model(**inputs, **self.forward_options)["logits"]
            scores = logits.float().numpy()
            if self.scores is not None:
                scores = self.scores(scores)
            best = scores.argmax(axis=-1)
            top = scores[np.arange(len(batch)), best]
            for index, label, score in zip(batch, best.tolist(), top.tolist(), strict=True):
                outputs[index] = {"label": self.labels[label], "score": score}
        return outputs

    def _tensors(self, encodings: list, width: int) -> dict:
        import torch

        # Padded on the right whatever the tokenizer's padding side: position ids then start at 0 for every text,
        # as in a prediction of the text alone.
        shape = (len(encodings), width)
        arrays = {
            "input_ids": np.full(shape, self.pad_id, dtype=np.int64),
            "attention_mask": np.zeros(shape, dtype=np.int64),
            "token_type_ids": np.full(shape, self.pad_type_id, dtype=np.int64),
        }
        with_types = "token_type_ids" in self.input_names
        for row, encoding in enumerate(encodings):
            length = len(encoding)
            arrays["input_ids"][row, :length] = encoding.ids
            arrays["attention_mask"][row, :length] = 1
            if with_types:
                arrays["token_type_ids"][row, :length] = encoding.type_ids
        device = self.model.device
        return {name: torch.from_numpy(arrays[name]).to(device) for name in self.input_names if name in arrays}


def _token_batches(order: list[int], lengths: list[int], max_tokens: int) -> Iterator[list[int]]:
    """Runs of ``order`` (ascending lengths) whose padded size (rows times the last row's length) fits
    ``max_tokens``."""
    batch: list[int] = []
    for index in order:
        if batch and (len(batch) + 1) * lengths[index] > max_tokens:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


_classifiers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_classifiers_lock = threading.Lock()


def batch_classifier(pipeline) -> BatchClassifier | None:
    """The pipeline's BatchClassifier (made once per loaded pipeline), or None when its tokenizer does not fit."""
    if not BatchClassifier.fits(pipeline):
        return None
    with _classifiers_lock:
        classifier = _classifiers.get(pipeline)
        if classifier is None:
            classifier = _classifiers[pipeline] = BatchClassifier(pipeline)
        return classifier
