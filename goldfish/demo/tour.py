"""``goldfish demo``: a whole experiment on the embedded default, for a newcomer's first look.

The tour calls the same services the MCP tools call (``project.sources``, ``project.workspaces``,
``project.runs``, ``project.records``), in the order an agent would: register the data, create and
mount a workspace, run the pipeline with a results_spec, meet the finalization gate, finalize and
tag, then watch the pre-run review stop a buggy copy before it launches. The project it leaves
behind is an ordinary Goldfish project to explore with ``goldfish tui`` or Claude Code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from goldfish import names
from goldfish.demo.data import export_digits
from goldfish.demo.narrate import Narrator, StageProgress, human_bytes, metric_line, seconds_between, short
from goldfish.errors import Blocked, Conflict, GoldfishError, InvalidInput
from goldfish.fsutil import atomic_write
from goldfish.init import init_project
from goldfish.project import CONFIG_FILE, Project
from goldfish.runs.service import RunResult

MARKER = ".goldfish-demo"  # in the project root: this directory was made by `goldfish demo`
DEFAULT_NAME = "goldfish-demo"
SOURCE = "digits"
BASE_WORKSPACE = "digits_mlp"
SLOTS = ("w1", "w2")
FIXTURE_ITEMS = ("pipeline.yaml", "configs", "modules")
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # goldfish/, where a wheel puts _demo_fixture
STEPS = 8

RESULTS_SPEC: dict[str, Any] = {
    "primary_metric": "val/accuracy",
    "direction": "maximize",
    "min_value": 0.90,
    "goal_value": 0.95,
    "dataset_split": "val",
    "tolerance": 0.005,
    "context": "Baseline: a 64-unit MLP trained with SGD on 80% of the digits, scored on the held-out 20%.",
    "secondary_metrics": ["val/macro_recall"],
}
REASON: dict[str, str] = {
    "description": "Baseline MLP on the 8x8 digits",
    "hypothesis": "One hidden layer of 64 units is enough for at least 95% validation accuracy",
    "approach": "Scale pixels to [0, 1], stratified 80/20 split, 30 epochs of minibatch SGD",
    "goal": "val/accuracy >= 0.95",
}


def fixture_dir() -> Path:
    """The demo project: shipped inside the wheel, or ``fixtures/demo`` of a source checkout."""
    for candidate in (PACKAGE_DIR / "_demo_fixture", PACKAGE_DIR.parent / "fixtures" / "demo"):
        if (candidate / "pipeline.yaml").is_file():
            return candidate
    raise GoldfishError("The demo fixture (fixtures/demo) is missing from this installation.",
                        fix="Reinstall Goldfish from a complete source checkout: pip install -e '.[demo]'.")


def prepare_directory(directory: Path) -> tuple[Path, bool]:
    """(absolute project root, True when it is a demo project from an earlier run).

    Refuses anything else that already has content: the demo never writes into a directory it
    did not create.
    """
    root = directory.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise InvalidInput(f"{root} exists and is not a directory.", fix="Pass --dir with a directory path.")
    ours = (root / MARKER).is_file()
    if (root / CONFIG_FILE).is_file() and not ours:
        raise Conflict(f"{root} is a Goldfish project that `goldfish demo` did not create; the demo leaves it alone.",
                       fix="Pass --dir with a new directory, e.g. --dir ./demo-project.")
    if root.is_dir() and not ours and any(root.iterdir()):
        raise Conflict(f"{root} is not empty and is not a demo project; the demo will not write into it.",
                       fix="Pass --dir with a new (or empty) directory, e.g. --dir ./demo-project.")
    return root, ours


def _free_name(taken: set[str], base: str) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


def _copy_fixture(src: Path, slot: Path, broken: bool = False) -> list[str]:
    copied = []
    for item in FIXTURE_ITEMS:
        path = src / item
        target = slot / item
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            copied += [str(p.relative_to(slot)) for p in sorted(target.rglob("*")) if p.is_file()]
        else:
            shutil.copy2(path, target)
            copied.append(item)
    if broken:
        for path in sorted((src / "broken").rglob("*.py")):
            rel = path.relative_to(src / "broken")
            shutil.copy2(path, slot / rel)
    return copied


class DemoTour:
    def __init__(self, directory: Path, narrator: Narrator | None = None):
        self.directory = directory
        self.say = narrator or Narrator(STEPS)
        self.fixture = fixture_dir()

    # ------------------------------------------------------------------ steps
    def run(self) -> int:
        say = self.say
        root, reused = prepare_directory(self.directory)
        say.title("Goldfish demo: a real experiment, end to end, on this machine (no cloud, no API key)")
        project = self.open_project(root, reused)
        self.register_data(project)
        workspace, slot = self.make_workspace(project)
        result = self.run_pipeline(project, slot)
        if result.status != "completed":
            say.did(f"The pipeline ended {result.status}: {result.message}")
            say.did(f"See why: goldfish --project {project.root} status, or the run logs under {project.runs_dir}")
            return 1
        self.show_gate(project, slot)
        evaluate_id = self.finalize_and_tag(project, result)
        self.broken_variant(project, workspace, result)
        self.where_things_are(project, workspace, evaluate_id)
        return 0

    def open_project(self, root: Path, reused: bool) -> Project:
        self.say.step("Project", "A Goldfish project is your ML project (goldfish.yaml + workspaces/) plus a hidden "
                      "dev repo beside it, where every version, run and record is kept.")
        name = root.name if _valid_name(root.name) else DEFAULT_NAME
        init = init_project(root, None if reused else name)
        if not reused:
            atomic_write(root / MARKER, json.dumps({"created_by": "goldfish demo"}) + "\n")
        self.say.call(f"initialize_project(project_name={name!r}, project_root={str(root)!r})")
        self.say.did(init.message if init.created else f"Reusing the demo project at {root} from an earlier run.")
        self.say.did(f"project: {init.project_root}")
        self.say.did(f"dev repo (never edit it by hand): {init.dev_repo}")
        from goldfish.guide import install_agent_files

        script = Path(sys.executable).parent / "goldfish"
        files = install_agent_files(root, command=[str(script)] if script.exists() else None)
        if files.mcp_json and files.skill_file:
            self.say.did("wrote .mcp.json and .claude/skills/goldfish/SKILL.md: `claude` started here finds the "
                         "server and the agent guide")
        project = Project.open(root, source="cli")
        from goldfish.runs.reconciler import reconcile_quietly

        reconcile_quietly(project)
        return project

    def register_data(self, project: Project) -> None:
        self.say.step("Data", "Sources are registered once with strict metadata (what the data is, how it is "
                      "encoded, what each array means); pipelines then read them by name, and Goldfish checks "
                      "the file has not changed before every run that reads it.")
        path = project.root / "data" / "digits.npz"
        existing = project.store.table("sources").get_doc(SOURCE)
        if existing is not None:
            if not path.exists():
                export_digits(path)  # the export is byte-for-byte deterministic
            problem = project.sources.verify(SOURCE)
            if problem is not None:
                raise Conflict(f"The demo's source {SOURCE!r} no longer matches its file: {problem.message}",
                               fix="Run the demo in a new directory: goldfish demo --dir ./another-demo.")
            self.say.did(f"Source {SOURCE!r} is already registered ({existing.get('location')}); reusing it.")
            return
        metadata = export_digits(path)
        arrays = metadata["schema"]["arrays"]
        self.say.did(f"Exported scikit-learn's digits to {path} ({human_bytes(path.stat().st_size)}): "
                     + ", ".join(f"{k} {v['shape']} {v['dtype']} ({v['role']})" for k, v in arrays.items()))
        self.say.call(f"register_source(name={SOURCE!r}, gcs_path={str(path)!r}, metadata={{schema_version: 1, "
                      "description, source: {format: npz, size_bytes, created_at}, schema: {kind: tensor, arrays: "
                      "{images: feature_names pixel_{i} x64, labels}}}, reason=...)")
        registered = project.sources.register_source(
            SOURCE, str(path), metadata["description"],
            "The demo's dataset: handwritten digits for the baseline classifier", metadata,
            format="npz", size_bytes=metadata["source"]["size_bytes"],
        )
        self.say.did(registered.message)
        if registered.source.sha256:
            self.say.did(f"sha256 {registered.source.sha256[:16]}…, metadata {registered.source.metadata_status}")

    def make_workspace(self, project: Project) -> tuple[str, str]:
        self.say.step("Workspace", "A workspace is one line of experiments (a hidden git branch). Mounting it puts "
                      "plain files in a slot (workspaces/w1, no .git) where you or Claude edit them.")
        workspaces = project.workspaces
        self._free_slots(project)
        name = _free_name(set(workspaces.names(include_deleted=True)), BASE_WORKSPACE)
        goal = "Classify 8x8 handwritten digits with a small numpy MLP; reach 95% validation accuracy"
        self.say.call(f"create_workspace(name={name!r}, goal={goal!r}, reason=...)")
        workspaces.create(name, goal, "Demo: a baseline experiment on the digits dataset")
        self.say.call(f"mount(workspace={name!r}, slot='w1', reason=...)")
        mounted = workspaces.mount(name, SLOTS[0], "Demo: set up the baseline's files")
        files = _copy_fixture(self.fixture, Path(mounted.path))
        self.say.did(f"Mounted {name} at {mounted.path}")
        self.say.did(f"Wrote the project into the slot ({len(files)} files): " + ", ".join(files))
        return name, SLOTS[0]

    def _free_slots(self, project: Project) -> None:
        for info in project.workspaces.slot_status():
            if info.slot in SLOTS and info.workspace is not None:
                project.workspaces.hibernate(info.slot, "Demo re-run: free the slot for a new demo workspace")
                self.say.did(f"Hibernated {info.workspace} from {info.slot} (left by an earlier demo; its history is kept)")

    def run_pipeline(self, project: Project, slot: str) -> RunResult:
        self.say.step("Run", "run() records first and executes second: it commits the slot as a new version, writes "
                      "one stage run and one experiment record per stage with your results_spec, then a detached "
                      "runner executes the stages from that commit (never from the live files). SVS reviews the "
                      "code before each stage launches and checks every output against its schema.")
        self.say.call(f"run({slot!r}, reason={{description, hypothesis, approach, goal}}, results_spec={{primary_metric: "
                      f"'val/accuracy', direction: maximize, min_value: 0.90, goal_value: 0.95, ...}})")
        progress = StageProgress(self.say)
        result = _started(project.runs.run(slot, reason=REASON, results_spec=RESULTS_SPEC, wait=True,
                                           wait_seconds=240, progress=progress))
        self.say.did(f"Version {result.workspace}@{result.version} (commit {result.sha[:10]}) was created before "
                     f"anything ran; pipeline run {result.pipeline_run_id}; its result is the {result.result_stage} "
                     "stage (the last one that logs val/accuracy), the other stages support it")
        for stage_run in result.stage_runs:
            self._summarise_stage(project, stage_run.stage_run_id)
        return result

    def _summarise_stage(self, project: Project, run_id: str) -> None:
        doc = project.runs.get(run_id)
        took = seconds_between(doc.get("started_at"), doc.get("finished_at"))
        svs = doc.get("svs") or {}
        review = (svs.get("review") or {}).get("decision") or "none"
        head = f"{doc['stage']}: {doc['state']}" + (f" in {took:.1f}s" if took is not None else "")
        self.say.did(f"{head}; record {doc['record_id']}; pre-run review: {review}")
        shown = list((doc.get("config") or {}).get("dashboard_metrics") or [])
        summary = doc.get("metrics_summary") or {}
        for name in shown + sorted(set(summary) - set(shown)):
            if name in summary:
                self.say.did(f"    metric {metric_line(name, summary[name])}")
        stats = (svs.get("post") or {}).get("stats") or {}
        for name, out in sorted((doc.get("outputs") or {}).items()):
            if not out.get("exists"):
                continue
            keys = [k for k in stats if k == name or k.startswith(name + ".")]
            shapes = ", ".join(f"{k.split('.', 1)[-1] if '.' in k else name} {stats[k].get('shape')} {stats[k].get('dtype')}"
                               for k in keys[:4])
            self.say.did(f"    output {name} ({out.get('format')}, {human_bytes(out.get('size_bytes'))})"
                         + (f": {shapes}" if shapes else "") + " - contract checked, stats recorded")
        for finding in svs_findings(doc):
            if finding.get("severity") in ("warning", "error"):
                self.say.did(f"    SVS {finding.get('severity')} [{finding.get('check')}]: {short(finding.get('message'), 140)}")
        if doc.get("error") and doc["state"] != "completed":
            self.say.did(f"    {short(doc['error'], 200)}")

    def show_gate(self, project: Project, slot: str) -> None:
        self.say.step("Finalization gate", "A finished run must be judged before the next one starts in the same "
                      "workspace, so no result is forgotten. Trying to run again now is refused:")
        self.say.call(f"run({slot!r}, ...)")
        try:
            project.runs.run(slot, reason=REASON, results_spec=RESULTS_SPEC)
        except Blocked as exc:
            self.say.block(f"refused: {exc.message}\nfix: {exc.fix}", indent="    ")
        else:  # the gate is an invariant; reaching this means it is broken, and the demo should say so
            raise GoldfishError("The finalization gate let a second run start while the first was unfinalized.",
                                fix="This is a Goldfish bug: please report it with the output above.")

    def finalize_and_tag(self, project: Project, result: RunResult) -> str:
        self.say.step("Finalize and tag", "finalize_run records your judgement (value, ml_outcome, notes) next to "
                      "the automatic results; tag_record names the record so you can come back to it.")
        evaluate = next(s for s in result.stage_runs if s.stage == "evaluate")
        auto = project.runs.get(evaluate.stage_run_id).get("results_auto") or {}
        value = float(auto.get("value") or 0.0)
        outcome = auto.get("ml_outcome_hint") or "unknown"
        results = {
            "primary_metric": "val/accuracy", "direction": "maximize", "value": value, "dataset_split": "val",
            "ml_outcome": outcome,
            "notes": f"Baseline MLP reached {value:.4f} validation accuracy (goal 0.95); the demo accepts the "
                     "automatic result as final.",
        }
        self.say.did(f"results_auto of evaluate: val/accuracy = {value:.4f} -> suggested ml_outcome {outcome!r}")
        self.say.call(f"finalize_run({result.pipeline_run_id!r}, {{'primary_metric': 'val/accuracy', 'direction': "
                      f"'maximize', 'value': {value!r}, 'dataset_split': 'val', 'ml_outcome': {outcome!r}, "
                      f"'notes': {results['notes']!r}}})")
        final = project.records.finalize_run(result.pipeline_run_id, results)
        self.say.did(final.message)
        for warning in final.warnings:
            self.say.did(f"note: {warning}")
        self.say.call(f"tag_record({evaluate.stage_run_id!r}, 'best-v1')")
        tagged = project.records.tag_record(evaluate.stage_run_id, "best-v1")
        self.say.did(tagged.message)
        return evaluate.stage_run_id

    def broken_variant(self, project: Project, workspace: str, result: RunResult) -> RunResult:
        self.say.step("A bug caught before it runs", "Branch the baseline, make a one-character mistake in train.py "
                      "(load_input(\"train_feature\") instead of \"train_features\"), and run just the train stage on "
                      "the baseline's preprocessed data. run() reviews every requested stage against pipeline.yaml "
                      "before any of them launches, offline, in milliseconds, and answers BLOCKED with the fix.")
        workspaces = project.workspaces
        name = _free_name(set(workspaces.names(include_deleted=True)), f"{workspace}_typo")
        self.say.call(f"create_workspace(name={name!r}, from_workspace={workspace!r}, "
                      f"from_version={result.version!r}, goal=..., reason=...)")
        workspaces.create(name, "Try the baseline with a refactored train stage", "Demo: branch the baseline",
                          from_workspace=workspace, from_version=result.version)
        mounted = workspaces.mount(name, SLOTS[1], "Demo: edit the branched train stage")
        _copy_fixture(self.fixture, Path(mounted.path), broken=True)
        self.say.did(f"Mounted {name} at {mounted.path}; modules/train.py now reads load_input(\"train_feature\")")
        preprocess = next(s.stage_run_id for s in result.stage_runs if s.stage == "preprocess")
        override = {sig: {"from_run": preprocess, "signal": sig}
                    for sig in ("train_features", "train_labels", "val_features", "val_labels")}
        self.say.call(f"run({SLOTS[1]!r}, stages=['train'], inputs_override={{...outputs of {preprocess}}}, ...)")
        blocked = _started(project.runs.run(
            SLOTS[1], stages=["train"], inputs_override=override,
            reason={"description": "Refactored train stage on the baseline's data",
                    "hypothesis": "Same accuracy as the baseline after the refactor"},
            results_spec={**RESULTS_SPEC, "context": "Refactor check: same data and settings as the baseline."},
        ))
        run = blocked.stage_runs[0]
        self.say.did(f"run() answered {blocked.status.upper()}: train ({run.stage_run_id}) {run.state}, cause "
                     f"{run.cause}, infra_outcome {run.infra_outcome}; nothing launched")
        for finding in blocked.findings:
            if finding.blocks:
                self.say.did(f"review [{finding.check}] {finding.where}: {short(finding.message, 160)}")
                if finding.fix:
                    self.say.did(f"fix: {short(finding.fix, 160)}")
        self.say.did(f"The record {run.record_id} still exists (provenance first), but a blocked run never holds the "
                     "finalization gate: fix the code and run again.")
        key = f"blocked:{run.stage_run_id}"
        why = "Demo: the typo is deliberate, and the review stopped it before anything launched"
        self.say.call(f"dashboard(acknowledge=[{key!r}], acknowledge_reason={why!r})")
        from goldfish.runs.alerts import acknowledge

        self.say.did(acknowledge(project, [key], why).message)
        return blocked

    def where_things_are(self, project: Project, workspace: str, evaluate_id: str) -> None:
        self.say.step("What Goldfish remembers", "Everything above is in the store and the dev repo: status, "
                      "the experiment history, lineage, and the dashboard all read it back.")
        from goldfish.status import render_status_text

        self.say.call("status()")
        self.say.block(render_status_text(project))
        self.say.call(f"list_history({workspace!r})")
        history = project.records.list_history(workspace)
        for rec in history.records:
            metric = rec.primary_metric
            value = f"{metric.name}={metric.value:.4f} ({metric.source})" if metric and metric.value is not None else "-"
            tags = f" tags={','.join(rec.tags)}" if rec.tags else ""
            support = f" (+ {', '.join(s.stage for s in rec.supporting)})" if rec.supporting else ""
            self.say.did(f"{rec.record_id}  {rec.stage or '':<10} {rec.version:<4} {rec.state or '':<10} "
                         f"{value:<34} {rec.ml_outcome or ''}{tags}{support}")
        self.say.call(f"get_lineage({evaluate_id!r}, direction='upstream')")
        self._lineage(project, evaluate_id, depth=0)
        self._dashboard(project)
        exe = goldfish_command()
        self.say._out()
        self.say._out(f"Done in {self.say.elapsed():.0f}s. The project is at {project.root}")
        self.say._out(f"  Dashboard:    cd {project.root} && {exe} tui")
        self.say._out(f"  Claude Code:  cd {project.root} && claude   (.mcp.json names the server)")
        self.say._out(f"  Other clients: claude mcp add goldfish -- {exe} serve --project {project.root}")
        self.say._out("  Then ask Claude: \"What is the best run so far, and why did the typo branch fail?\"")

    def _lineage(self, project: Project, run_id: str, depth: int) -> None:
        lineage = project.records.get_lineage(run_id, "upstream")
        pad = "    " * depth
        for producer in lineage.producers or []:
            if producer.run_id:
                self.say.did(f"{pad}{lineage.stage} <- {producer.stage} {producer.run_id} "
                             f"({', '.join(producer.signal_produced)})")
                if depth < 2:
                    self._lineage(project, producer.run_id, depth + 1)
            else:
                self.say.did(f"{pad}{lineage.stage} <- source {producer.source or producer.location} "
                             f"({', '.join(producer.inputs)})")

    def _dashboard(self, project: Project) -> None:
        import importlib.util

        if importlib.util.find_spec("tui") is None:
            return
        self.say.call("goldfish tui --headless --text --fail-on-alerts")
        cmd = [sys.executable, "-m", "goldfish", "--project", str(project.root), "tui", "--headless", "--text",
               "--fail-on-alerts"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        self.say.block(done.stdout or done.stderr)
        self.say.did(f"exit code {done.returncode}: " + ("no alert needs anyone" if done.returncode == 0 else
                                                         "an alert needs someone (see above)"))


def svs_findings(doc: dict[str, Any], phases: tuple[str, ...] = ("preflight", "review", "during", "post")
                 ) -> list[dict[str, Any]]:
    """Every SVS finding stored on a stage run doc, from the given phases, in phase order."""
    svs = doc.get("svs") or {}
    found: list[dict[str, Any]] = []
    if "preflight" in phases:
        pre = svs.get("preflight") or {}
        found += [{**issue, "severity": sev, "check": f"preflight {issue.get('location')}"}
                  for sev, key in (("error", "errors"), ("warning", "warnings")) for issue in pre.get(key) or []]
    if "review" in phases:
        found += list((svs.get("review") or {}).get("findings") or [])
    if "during" in phases:
        found += list(svs.get("during") or [])
    if "post" in phases:
        post = svs.get("post") or {}
        found += list(post.get("findings") or []) + list((post.get("hook") or {}).get("findings") or [])
    return [f for f in found if isinstance(f, dict)]


def goldfish_command() -> str:
    """``goldfish`` when that is this installation on PATH, else the absolute path of its script
    (after ``make demo`` it lives in .venv/bin, which is rarely on PATH)."""
    script = Path(sys.executable).parent / "goldfish"
    found = shutil.which("goldfish")
    if found is not None and (not script.exists() or Path(found).resolve() == script.resolve()):
        return "goldfish"
    return str(script) if script.exists() else "goldfish"


def _started(result: object) -> RunResult:
    assert isinstance(result, RunResult)  # run() returns a DryRunResult only for dry_run=True
    return result


def _valid_name(name: str) -> bool:
    try:
        names.workspace_name(name)
    except InvalidInput:
        return False
    return True


def run_demo(directory: Path) -> int:
    return DemoTour(directory).run()
