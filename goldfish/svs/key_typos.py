"""Which side of a config-key mismatch is probably misspelled: the code's read or the config's key.

A key made only of known words (a small ML vocabulary, plus the words of the config's other keys)
beats one that is not; failing that, a spelling the code also uses as a name or reads elsewhere is
taken as intended. Undecided cases name both fixes.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import Literal

Side = Literal["code", "config", "unknown"]

_WORDS = """
a accumulation activation adam alpha amsgrad anchor api architecture attention augment augmentation
axis b backbone base batch batches begin best beta beta1 beta2 bias bidirectional bins block blocks bool
buffer cache channels checkpoint chunk class classes clip coef coefficient columns config context count
cpu cross cuda cutoff d data dataset decay decoder deep default delta depth device dim dims dimension
directory dir dist distance dropout early embed embedding embeddings enable enabled encoder end ensemble
entropy eps epoch epochs epsilon eval evaluate every factor false feature features file files filter
filters first fold folds format fraction freeze frequency from gamma gpu grad gradient gradients
graph group groups head heads hidden horizon id ids image images in init initial input inputs interval
iter iters iteration iterations k kernel l1 l2 label labels lag lags lambda last layer layers lr learning
length level limit log logging loss lower lstm margin mask max mean metric metrics min mode model
momentum n name negative nesterov net network noise norm normalize num number of optim optimizer
optimiser out output outputs p pad padding path patience per pool pooling positive prefetch prob
probability rank rate ratio reg regularization residual rows run sample samples scale scaler schedule
scheduler seed seq sequence shuffle size sizes smoothing split stage start std step steps stride
target task temperature test threshold tokens top train training trees true type units upper use
val valid validation value vocab warmup weight weights width window workers x y
"""
VOCABULARY = frozenset(_WORDS.split())


def _words(key: str) -> list[str]:
    return [w for w in re.split(r"[^a-z]+", key.lower()) if w]


def _known(key: str, extra: set[str]) -> bool:
    words = _words(key)
    return bool(words) and all(w in VOCABULARY or w in extra for w in words)


def _uses(tree: ast.AST | None, key: str) -> int:
    """How often the code names ``key``: as a variable, attribute, argument or string."""
    if tree is None:
        return 0
    count = 0
    for node in ast.walk(tree):
        if (isinstance(node, ast.Name) and node.id == key) or (isinstance(node, ast.Attribute) and node.attr == key) \
                or (isinstance(node, ast.arg) and node.arg == key) \
                or (isinstance(node, ast.Constant) and node.value == key):
            count += 1
    return count


def misspelled_side(code_key: str, config_key: str, other_keys: Iterable[str], tree: ast.AST | None) -> Side:
    extra = {w for k in other_keys if k != config_key for w in _words(k)}
    code_known, config_known = _known(code_key, extra), _known(config_key, extra)
    if code_known != config_known:
        return "config" if code_known else "code"
    # The read itself is one use (its string); a second one (a variable of the same name, another read)
    # says the code means this spelling.
    if _uses(tree, code_key) >= 2:
        return "config"
    return "unknown"
