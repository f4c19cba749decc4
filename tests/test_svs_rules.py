"""The offline `rules` review provider: one true positive and one true negative per rule, on real files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from goldfish.svs.findings import Finding, ReviewResult, verdict_for
from goldfish.svs.pattern_rules import Detection, find_matches, line_regex
from goldfish.svs.code import parse_file
from goldfish.svs.rules_review import rules_review
from tests.svs_helpers import TRAIN_PIPELINE, write_app


def review(tmp_path: Path, code: str, *, stage: str = "train", config: dict[str, Any] | None = None,
           pipeline: str = TRAIN_PIPELINE, extra: dict[str, str] | None = None, files: dict[str, str] | None = None,
           patterns: list[dict[str, Any]] | None = None, inputs: dict[str, Any] | None = None) -> list[Finding]:
    app = tmp_path / "app"
    modules = {stage: code, **(extra or {})}
    p = write_app(app, pipeline, modules, files=files)
    return rules_review(app, p, stage, config or {}, patterns=patterns or [], inputs=inputs)


def checks(findings: list[Finding]) -> list[str]:
    return [f.check for f in findings]


# A stage that does everything right: no finding at all.
GOOD_TRAIN = """\
import json
from pathlib import Path

import numpy as np
from goldfish.io import load_input, save_output, get_output_path, get_config, heartbeat, should_stop, runtime_log
from goldfish.metrics import log_metric, log_metrics, finish


def train_step(w, x, lr):
    grad = 2 * x.T @ (x @ w - 1.0) / len(x)
    return w - lr * grad, float(np.mean((x @ w - 1.0) ** 2))


def main():
    cfg = get_config()
    x = load_input("features")
    w = np.zeros(x.shape[1], dtype=np.float32)
    lr = cfg["lr"]
    momentum = cfg["optim"]["momentum"]
    seed = cfg.get("seed", 0)
    for epoch in range(cfg["epochs"]):
        w, loss = train_step(w, x, lr * momentum)
        log_metric("train/loss", loss, step=epoch)
        log_metrics({"train/lr": lr, "train/seed": seed}, step=epoch)
        heartbeat(f"epoch {epoch}")
        if should_stop():
            runtime_log("stop requested")
            break
    model_dir = get_output_path("model")
    (model_dir / "weights.npy").write_bytes(w.tobytes())
    save_output("model", model_dir)
    save_output("embeddings", np.tile(w, (3, 1)).astype(np.float32))
    save_output("summary", {"loss": loss})
    finish()


if __name__ == "__main__":
    main()
"""
GOOD_CONFIG = {"lr": 0.1, "epochs": 5, "optim": {"momentum": 0.9}}


def test_normal_training_script_has_no_findings(tmp_path: Path) -> None:
    assert review(tmp_path, GOOD_TRAIN, config=GOOD_CONFIG) == []


# The seed's "Stage Implementation Pattern" example, verbatim (its elided parts left as they are).
SEED_EXAMPLE = """\
# modules/train.py
from goldfish.io import load_input, save_output, runtime_log, should_stop

def main():
    # MANDATORY: Use goldfish.io for ALL signal I/O
    features = load_input("features")

    for epoch in range(epochs):
        # 1. Logic
        # ...

        # 2. Monitoring support (MANDATORY for AI oversight)
        runtime_log(f"Epoch {epoch} loss: {l:.4f}")
        if should_stop():
             print("Early stop requested by SVS")
             break

    # MANDATORY: Use save_output for persistent artifacts
    save_output("model", model_dir)
"""
SEED_PIPELINE_TRAIN = """\
stages:
  - name: preprocess
    outputs:
      features: {type: npy, schema: {kind: tensor, shape: [null, 768], dtype: float32}}
  - name: train
    inputs:
      features: {type: npy, from_stage: preprocess, signal: features,
                 schema: {kind: tensor, shape: [null, 768], dtype: float32}}
    outputs:
      model: {type: directory, schema: null}
"""


def test_seed_example_verbatim_reports_only_its_elided_names(tmp_path: Path) -> None:
    found = review(tmp_path, SEED_EXAMPLE, pipeline=SEED_PIPELINE_TRAIN)
    undefined = sorted(f.message.split("'")[1] for f in found if f.check == "undefined_name")
    assert undefined == ["epochs", "l", "model_dir"]  # the "# ..." parts the seed leaves out
    assert all(f.check in ("undefined_name", "training_without_metrics") for f in found)


def test_seed_example_completed_is_approved(tmp_path: Path) -> None:
    completed = SEED_EXAMPLE.replace(
        "from goldfish.io import load_input, save_output, runtime_log, should_stop",
        "from goldfish.io import load_input, save_output, runtime_log, should_stop, get_config, get_output_path",
    ).replace(
        '    features = load_input("features")\n',
        '    features = load_input("features")\n    epochs = get_config()["epochs"]\n'
        '    model_dir = get_output_path("model")\n',
    ).replace("        # ...\n", "        l = float(features.mean()) / (epoch + 1)\n")
    found = review(tmp_path, completed, pipeline=SEED_PIPELINE_TRAIN, config={"epochs": 3})
    assert verdict_for(found) == "approved", [f.render() for f in found]
    # It logs progress only with runtime_log: a note, not a warning.
    assert [(f.check, f.severity) for f in found] == [("training_without_metrics", "info")]


# --------------------------------------------------------------------------- syntax / names
def test_syntax_error_is_reported_with_line(tmp_path: Path) -> None:
    found = review(tmp_path, "def main(:\n    pass\n")
    assert checks(found) == ["syntax_error"]
    assert found[0].line == 1 and found[0].file == "modules/train.py" and found[0].blocks


def test_compile_time_error_is_a_syntax_error(tmp_path: Path) -> None:
    found = review(tmp_path, "x = 1\nreturn x\n")
    assert checks(found) == ["syntax_error"] and found[0].line == 2


def test_undefined_name_with_did_you_mean(tmp_path: Path) -> None:
    code = GOOD_TRAIN.replace('log_metric("train/loss", loss, step=epoch)', 'log_metric("train/loss", loss, step=epoc)')
    found = review(tmp_path, code, config=GOOD_CONFIG)
    assert checks(found) == ["undefined_name"]
    f = found[0]
    assert f.blocks and "'epoc'" in f.message and 'Did you mean "epoch"' in (f.fix or "")
    assert f.line == code.splitlines().index(next(x for x in code.splitlines() if "epoc)" in x)) + 1


def test_defined_names_are_not_reported(tmp_path: Path) -> None:
    code = """\
    try:
        import torch
    except ImportError:
        torch = None

    def main():
        values = [v * 2 for v in range(3)]
        print(__file__, __name__, later(), values, torch)

    def later():
        return LIMIT

    LIMIT = 3
    """
    assert review(tmp_path, code, stage="prepare") == []


def test_undefined_name_in_imported_helper(tmp_path: Path) -> None:
    main = "from modules.helpers import scale\n\ndef main():\n    return scale(2)\n"
    helper = "def scale(x):\n    return x * factr\n"
    found = review(tmp_path, main, stage="prepare", extra={"helpers": helper})
    assert [(f.check, f.file, f.line) for f in found] == [("undefined_name", "modules/helpers.py", 2)]


# --------------------------------------------------------------------------- signals
def test_misspelled_input_blocks_with_fix(tmp_path: Path) -> None:
    code = GOOD_TRAIN.replace('load_input("features")', 'load_input("featurs")')
    found = review(tmp_path, code, config=GOOD_CONFIG)
    assert checks(found) == ["unknown_signal"]
    f = found[0]
    assert f.blocks and f.signal == "featurs" and 'Did you mean "features"' in f.message
    assert "load_input('features')" in (f.fix or "")


def test_output_read_as_input_is_named(tmp_path: Path) -> None:
    code = GOOD_TRAIN.replace('load_input("features")', 'load_input("model")')
    found = review(tmp_path, code, config=GOOD_CONFIG)
    assert checks(found) == ["unknown_signal"] and "an output of stage train" in found[0].message


def test_signal_names_resolve_module_aliases(tmp_path: Path) -> None:
    code = """\
    import goldfish.io as gio
    from goldfish import io

    def main():
        gio.load_input("features")
        io.get_output_path("embedings")
    """
    found = review(tmp_path, code, stage="train")
    assert [(f.check, f.signal) for f in found if f.check != "training_without_metrics"] == [
        ("unknown_signal", "embedings")]


def test_dynamic_names_and_own_functions_are_not_checked(tmp_path: Path) -> None:
    code = """\
    from goldfish.io import save_output

    def load_input(name):
        return name

    def main(name):
        load_input("anything")
        save_output(name, None)
    """
    assert review(tmp_path, code, stage="prepare") == []


# --------------------------------------------------------------------------- save_output on file/directory
@pytest.mark.parametrize("data, what", [
    ('"out/model"', "a str"),
    ('os.path.join("out", "model")', "a str"),
    ("model_dir", "a str"),
    ("{'w': 1}", "a dict"),
])
def test_save_output_directory_without_path(tmp_path: Path, data: str, what: str) -> None:
    code = f"""\
    import os
    from goldfish.io import save_output

    def main():
        model_dir = f"out/{{1}}"
        save_output("model", {data})
    """
    found = review(tmp_path, code, stage="train")
    found = [f for f in found if f.check != "training_without_metrics"]
    assert checks(found) == ["save_output_needs_path"]
    assert what in found[0].message and "get_output_path('model')" in (found[0].fix or "") and found[0].blocks


def test_save_output_with_paths_and_unknowns_passes(tmp_path: Path) -> None:
    code = """\
    import json
    import numpy as np
    from pathlib import Path
    from goldfish.io import save_output, get_output_path
    from goldfish.metrics import log_metric

    def build():
        return Path("x")

    def main(arg):
        log_metric("train/loss", 1.0)
        save_output("model", get_output_path("model"))
        d = Path("tmp") / "model"
        save_output("model", d)
        save_output("model", build())
        save_output("model", arg)
        save_output("summary", {"a": 1})          # file output with a json schema takes a dict
        save_output("embeddings", np.zeros((2, 4), dtype=np.float32))
    """
    assert review(tmp_path, code, stage="train") == []


# --------------------------------------------------------------------------- training without metrics
def test_training_stage_without_any_logging_blocks(tmp_path: Path) -> None:
    code = """\
    from goldfish.io import load_input

    def main():
        x = load_input("features")
        return x.mean()
    """
    found = review(tmp_path, code, stage="train")
    assert [(f.check, f.severity, f.blocks) for f in found] == [("training_without_metrics", "error", True)]
    assert "log_metric(" in (found[0].fix or "")


def test_optimizer_loop_marks_a_training_stage(tmp_path: Path) -> None:
    code = """\
    def main(model, optimizer, batches):
        for batch in batches:
            optimizer.zero_grad()
            model(batch).backward()
            optimizer.step()
    """
    found = review(tmp_path, code, stage="prepare")
    assert [(f.check, f.severity, f.line) for f in found] == [("training_without_metrics", "error", 2)]


def test_non_training_stage_needs_no_metrics(tmp_path: Path) -> None:
    code = """\
    import numpy as np
    from goldfish.io import save_output

    def main(scaler, x):
        scaler.fit(x)
        save_output("features", np.zeros((2, 4), dtype=np.float32))
    """
    assert review(tmp_path, code, stage="prepare") == []


def test_writing_metrics_jsonl_directly_counts(tmp_path: Path) -> None:
    code = """\
    import json, os
    from pathlib import Path

    rt = Path(os.environ["GOLDFISH_OUTPUTS_DIR"]) / ".goldfish"
    with open(rt / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"type": "metric", "name": "acc", "value": 0.5, "step": 0}) + "\\n")
    """
    assert review(tmp_path, code, stage="train") == []


def test_metrics_logged_in_a_helper_count(tmp_path: Path) -> None:
    main = "from modules.track import record\n\ndef main():\n    record(1.0)\n"
    helper = "from goldfish.metrics import log_metric\n\ndef record(v):\n    log_metric('train/loss', v)\n"
    assert review(tmp_path, main, stage="train", extra={"track": helper}) == []


# --------------------------------------------------------------------------- long loops
@pytest.mark.parametrize("loop", [
    "    for step in range(start, total_steps):\n",
    "    for i in range(100000):\n",
    "    for epoch in epochs_list:\n      for batch in batches:\n",
    "    while step < max_steps:\n",
])
def test_long_loop_without_stop_check_warns(tmp_path: Path, loop: str) -> None:
    code = (
        "from goldfish.metrics import log_metric\n\n"
        "def main(start, total_steps, epochs_list, batches, step, max_steps):\n"
        f"{loop}"
        "        log_metric('loss', 1.0)\n"
    )
    found = review(tmp_path, code, stage="train")
    assert [(f.check, f.severity, f.confidence) for f in found] == [("loop_without_stop_check", "warning", "medium")]
    assert found[0].line == 4 and "should_stop" in (found[0].fix or "")


@pytest.mark.parametrize("loop, extra", [
    ("for epoch in range(3):", ""),
    ("for row in rows:", ""),
    ("for step in range(total_steps):", "        heartbeat()\n"),
    ("for step in range(total_steps):", "        if should_stop():\n            break\n"),
])
def test_short_or_stoppable_loops_pass(tmp_path: Path, loop: str, extra: str) -> None:
    code = (
        "from goldfish.io import heartbeat, should_stop\nfrom goldfish.metrics import log_metric\n\n"
        f"def main(rows, total_steps):\n    {loop}\n        log_metric('loss', 1.0)\n{extra}"
    )
    assert review(tmp_path, code, stage="train") == []


# --------------------------------------------------------------------------- config keys
def test_missing_config_key_blocks_with_did_you_mean(tmp_path: Path) -> None:
    code = GOOD_TRAIN.replace('lr = cfg["lr"]', 'lr = cfg["learning_rat"]')
    config = {**GOOD_CONFIG, "learning_rate": 0.1}
    found = review(tmp_path, code, config=config)
    assert checks(found) == ["config_key_missing"]
    f = found[0]
    assert f.blocks and "'learning_rat'" in f.message and 'Did you mean "learning_rate"' in f.message
    # The code's spelling is the odd one: the fix is on the code's side, and the suggestion is said once.
    assert f.fix == f"Read 'learning_rate' instead of 'learning_rat' at modules/train.py:{f.line}."
    assert (f.message + f.fix).count("learning_rate") == 2


def test_misspelled_config_key_is_fixed_in_the_config(tmp_path: Path) -> None:
    code = GOOD_TRAIN.replace('lr = cfg["lr"]', 'lr = cfg["learning_rate"]')
    found = review(tmp_path, code, config={**GOOD_CONFIG, "learning_rte": 0.1})
    [f] = found
    assert "The config has 'learning_rte', which looks misspelled." in f.message and "Did you mean" not in f.message
    assert (f.fix or "").startswith("Rename 'learning_rte' to 'learning_rate' in configs/train.yaml")
    assert "modules/train.py" not in (f.fix or "")


def test_code_spelling_used_as_a_name_decides_for_the_code(tmp_path: Path) -> None:
    # Neither spelling is made of known words; the code also names a variable so: the config is the typo.
    code = GOOD_TRAIN.replace('lr = cfg["lr"]', 'zqk_fctr = cfg["zqk_fctr"]\n    lr = zqk_fctr')
    [f] = review(tmp_path, code, config={**GOOD_CONFIG, "zqk_fctrr": 0.1})
    assert (f.fix or "").startswith("Rename 'zqk_fctrr' to 'zqk_fctr' in configs/train.yaml")


def test_undecided_typo_names_both_fixes(tmp_path: Path) -> None:
    code = GOOD_TRAIN.replace('lr = cfg["lr"]', 'lr = cfg["zqk_fctr"]')
    [f] = review(tmp_path, code, config={**GOOD_CONFIG, "zqk_fctrr": 0.1})
    assert "one of the two spellings is a typo" in f.message
    assert (f.fix or "").startswith("Either read 'zqk_fctrr' at modules/train.py:")


def test_missing_nested_config_key(tmp_path: Path) -> None:
    code = GOOD_TRAIN.replace('cfg["optim"]["momentum"]', 'cfg["optim"]["momentom"]')
    found = review(tmp_path, code, config=GOOD_CONFIG)
    assert [(f.check, f.severity) for f in found] == [("config_key_missing", "error")]
    assert "'optim.momentom'" in found[0].message and 'Did you mean "momentum"' in found[0].message


def test_config_get_without_default_warns(tmp_path: Path) -> None:
    code = GOOD_TRAIN.replace('cfg.get("seed", 0)', 'cfg.get("seed")')
    found = review(tmp_path, code, config=GOOD_CONFIG)
    assert [(f.check, f.severity, f.confidence) for f in found] == [("config_key_missing", "warning", "medium")]


def test_config_reads_that_are_fine(tmp_path: Path) -> None:
    code = """\
    from goldfish.io import get_config

    def main():
        cfg = get_config()
        a = cfg.get("optional_flag", False)      # optional with a default
        b = cfg["inputs"]["features"]["location"] if "x" in cfg else None   # runtime keys
        if "debug" in cfg:
            c = cfg["debug"]                      # guarded
        try:
            d = cfg["maybe"]
        except KeyError:
            d = None
        e = get_config()["lr"]
        cfg["added"] = 1
        f = cfg["added"]
        return a, b, c, d, e, f
    """
    assert review(tmp_path, code, stage="prepare", config={"lr": 0.1}) == []


# --------------------------------------------------------------------------- requirements
def test_unpinned_requirements_warn(tmp_path: Path) -> None:
    reqs = "# deps\nnumpy\ntorch>=2.0  # floating\npandas==2.2.1\n-r other.txt\nmylib @ git+https://x/y@abc123\nscipy==1.*\n"
    found = review(tmp_path, "def main():\n    pass\n", stage="prepare", files={"requirements.txt": reqs})
    assert [(f.check, f.line) for f in found] == [
        ("unpinned_requirement", 2), ("unpinned_requirement", 3), ("unpinned_requirement", 7)]
    assert found[0].severity == "warning" and "numpy==" in (found[0].fix or "")


# --------------------------------------------------------------------------- stale inputs, missing module
def test_stale_input_warns(tmp_path: Path) -> None:
    inputs = {"features": {"kind": "stage", "run_id": "stage-00000001", "latest_run_id": "stage-00000002",
                           "latest_state": "running"}}
    found = review(tmp_path, GOOD_TRAIN, config=GOOD_CONFIG, inputs=inputs)
    assert [(f.check, f.severity) for f in found] == [("stale_input", "warning")]
    same = {"features": {"kind": "stage", "run_id": "stage-00000002", "latest_run_id": "stage-00000002"}}
    assert review(tmp_path, GOOD_TRAIN, config=GOOD_CONFIG, inputs=same) == []
    newer_failed = {"features": {**inputs["features"], "latest_state": "failed"}}
    assert review(tmp_path, GOOD_TRAIN, config=GOOD_CONFIG, inputs=newer_failed) == []


def test_missing_module_blocks(tmp_path: Path) -> None:
    app = tmp_path / "app"
    p = write_app(app, TRAIN_PIPELINE, {})
    found = rules_review(app, p, "train", {})
    assert [(f.check, f.blocks) for f in found] == [("missing_module", True)]


# --------------------------------------------------------------------------- approved patterns
def _pattern(detection: dict[str, Any], *, status: str = "approved", severity: str = "high") -> dict[str, Any]:
    return {"id": "fp-0000abcd", "status": status, "severity": severity, "detection": detection,
            "symptom": "pickle load of untrusted data crashed", "prevention": "Use allow_pickle=False."}


def test_approved_regex_pattern_blocks(tmp_path: Path) -> None:
    code = GOOD_TRAIN.replace("    seed = ", "    blob = np.load('x.npy', allow_pickle=True)\n    seed = ")
    found = review(tmp_path, code, config=GOOD_CONFIG,
                   patterns=[_pattern({"kind": "regex", "pattern": r"allow_pickle\s*=\s*True"})])
    assert [(f.source, f.check, f.severity, f.blocks) for f in found] == [
        ("pattern", "failure_pattern:fp-0000abcd", "error", True)]
    assert "allow_pickle=False" in (found[0].fix or "") and found[0].line is not None


def test_ast_call_pattern_resolves_aliases_and_keywords(tmp_path: Path) -> None:
    code = GOOD_TRAIN.replace("    seed = ", "    blob = np.load('x.npy', allow_pickle=True)\n    seed = ")
    rule = {"kind": "ast_call", "pattern": "numpy.load", "keywords": {"allow_pickle": True}}
    found = review(tmp_path, code, config=GOOD_CONFIG, patterns=[_pattern(rule, severity="medium")])
    assert [(f.check, f.severity) for f in found] == [("failure_pattern:fp-0000abcd", "warning")]
    safe = code.replace("allow_pickle=True", "allow_pickle=False")
    assert review(tmp_path, safe, config=GOOD_CONFIG, patterns=[_pattern(rule)]) == []


def test_pending_or_non_matching_patterns_are_silent(tmp_path: Path) -> None:
    rule = {"kind": "regex", "pattern": r"allow_pickle\s*=\s*True"}
    assert review(tmp_path, GOOD_TRAIN, config=GOOD_CONFIG, patterns=[_pattern(rule)]) == []
    code = GOOD_TRAIN.replace("    seed = ", "    blob = np.load('x.npy', allow_pickle=True)\n    seed = ")
    assert review(tmp_path, code, config=GOOD_CONFIG, patterns=[_pattern(rule, status="pending")]) == []


def test_ast_import_and_files_glob() -> None:
    source = parse_file("modules/train.py", "import tensorflow.keras as k\nx = 1\n")
    assert [m.line for m in find_matches(Detection(kind="ast_import", pattern="tensorflow"), [source])] == [1]
    assert find_matches(Detection(kind="ast_import", pattern="tensorflow", files="modules/other*.py"), [source]) == []


@pytest.mark.parametrize("raw, message", [
    ({"kind": "regex", "pattern": "("}, "not a valid regular expression"),
    ({"kind": "ast_call", "pattern": "not a name"}, "dotted name"),
    ({"kind": "regex", "pattern": "x", "keywords": {"a": 1}}, "only for kind ast_call"),
    ({"kind": "regex", "pattern": "x", "flags": "q"}, "unknown regex flags"),
    ({"kind": "grep", "pattern": "x"}, "regex"),
])
def test_bad_detection_rules_are_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Detection.model_validate(raw)


def test_line_regex_ignores_spacing() -> None:
    rule = Detection(kind="regex", pattern=line_regex("lr = cfg['lr_rate'] * 2"))
    source = parse_file("modules/a.py", "x = 1\nlr=cfg[ 'lr_rate' ]*2\n")
    assert [m.line for m in find_matches(rule, [source])] == [2]
    assert rule.concrete


# --------------------------------------------------------------------------- verdict rule
def test_verdict_rule() -> None:
    def f(severity: str, confidence: str = "high") -> Finding:
        return Finding.model_validate({"source": "rules", "check": "x", "severity": severity,
                                       "confidence": confidence, "message": "m"})
    assert verdict_for([]) == "approved"
    assert verdict_for([f("info")]) == "approved"
    assert verdict_for([f("warning")]) == "warned"
    assert verdict_for([f("error", "medium")]) == "warned"
    assert verdict_for([f("warning"), f("error")]) == "blocked"
    result = ReviewResult(verdict="blocked", provider="rules", findings=[f("error")])
    assert "blocked the run with 1 error" in result.block_message() and "skip_review=True" in result.block_message()
