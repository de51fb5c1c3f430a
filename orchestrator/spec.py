"""SweepSpec: the YAML a user writes, parsed once into typed, frozen models.

Validation reports every problem at once, each naming its field path
(``target_tasks[2]: unknown task 'xnlii' — did you mean 'xnli'?``). YAML is read with a
safe loader; nothing in a spec names code to import or run.
"""

from __future__ import annotations

import math
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from evaluation.data.mlm_corpus import CORPUS_DIR as MLM_CORPUS_DIR
from evaluation.tasks import Role, get_task, suggest, task_names
from evaluation.tasks.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol
from orchestrator.arms import parse_intermediate
from orchestrator.recipes import DEFAULT_RECIPE, RECIPES, Cited, Phase, get_recipe
from orchestrator.spec_checks import cross_check, format_errors
from storage.errors import UserError
from storage.files import check_uri, redact
from trainers.hparams import PhaseHparams

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
PSEUDO_TASKS = ("none", "multitask")
# Phang et al.'s multitask mixes the nine intermediate tasks of their study.
BUILTIN_SPECS = ("quickstart", "phang2020", "scaling")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid sweep name: use 1-64 of a-z 0-9 . _ - "
            "starting with a letter or digit"
        )
    return name


def _check_storage(uri: str) -> str:
    try:
        check_uri(uri)
    except UserError as err:
        raise ValueError(str(err)) from None
    return uri


def _check_target(name: str) -> str:
    task = get_task_or_value_error(name)
    if task.role is not Role.TARGET:
        raise ValueError(f"{name!r} is an intermediate task, not a target task")
    return name


def _check_intermediate(name: str) -> str:
    """A plain intermediate task, `none`, `multitask`, an arm of one (`mnli@n=2000`), or a
    mixture of arms (`mnli+mlm`)."""
    for arm in parse_intermediate(name).arms:
        if arm.task in PSEUDO_TASKS:
            continue
        task = get_task_or_value_error(arm.task, extra=PSEUDO_TASKS)
        if task.role is not Role.INTERMEDIATE:
            raise ValueError(f"{arm.task!r} is a target task, not an intermediate task")
    return name


def _check_recipe(name: str) -> str:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}{suggest(name, RECIPES)}")
    return name


def get_task_or_value_error(name: str, extra: tuple[str, ...] = ()) -> Any:
    try:
        return get_task(name)
    except UserError:
        raise ValueError(f"unknown task {name!r}{suggest(name, [*task_names(), *extra])}") from None


def _positive_seed(seed: int) -> int:
    if seed < 0:
        raise ValueError(f"seed {seed} is negative")
    return seed


TargetTask = Annotated[str, AfterValidator(_check_target)]
IntermediateTask = Annotated[str, AfterValidator(_check_intermediate)]
Seed = Annotated[int, AfterValidator(_positive_seed)]


def _check_mix_cap(value: Any) -> Any:
    if value is None or value == "uncapped" or (type(value) is int and value > 0):
        return value
    raise ValueError("a positive integer or 'uncapped' (proportional mixing without a cap)")


class Hparams(Strict):
    """Training hyperparameters of one phase. Unset fields fall back to the jiant recipe."""

    lr: float | None = Field(None, gt=0)
    epochs: float | None = Field(None, gt=0)
    max_steps: int | None = Field(None, gt=0)
    batch_size: int | None = Field(None, gt=0)
    grad_accum: int | None = Field(None, gt=0)
    warmup_ratio: float | None = Field(None, ge=0, le=1)
    max_seq_length: int | None = Field(None, ge=16, le=8192)
    eval_every: int | None = Field(None, gt=0)
    patience: int | None = Field(None, ge=0)
    weight_decay: float | None = Field(None, ge=0)
    max_grad_norm: float | None = Field(None, gt=0)
    micro_batch_size: int | None = Field(None, gt=0)
    # Multitask mixing: p_i ∝ min(n_i, mix_cap); `uncapped`: p_i ∝ n_i (jiant's rule).
    mix_cap: Annotated[int | str | None, BeforeValidator(_check_mix_cap)] = None

    def given(self) -> dict[str, Any]:
        """The settings this block states, as `PhaseHparams` values (`uncapped` is None)."""
        out = self.model_dump(exclude_none=True)
        if out.get("mix_cap") == "uncapped":
            out["mix_cap"] = None
        return out


class PhaseSettings(Strict):
    """Hyperparameters for every task of a phase (`defaults`) and per task (`overrides`)."""

    defaults: Hparams = Hparams()
    overrides: dict[str, Hparams] = {}

    def layers(self, task: str, where: str) -> list[tuple[str, Hparams]]:
        """(where, settings) that apply to `task`, the later over the earlier."""
        out = [(f"{where}.defaults", self.defaults)]
        if task in self.overrides:
            out.append((f"{where}.overrides.{task}", self.overrides[task]))
        return out


class PhaseConfig(PhaseSettings):
    """A phase's settings and, per model, settings that go over them. Precedence: recipe <
    defaults < overrides.<task> < by_model.<m>.defaults < by_model.<m>.overrides.<task>."""

    by_model: dict[str, PhaseSettings] = {}

    def model_layers(self, task: str, where: str, model: str | None) -> list[tuple[str, Hparams]]:
        out = self.layers(task, where)
        if model is not None and model in self.by_model:
            out += self.by_model[model].layers(task, f"{where}.by_model.{model}")
        return out


class Phase3Config(PhaseConfig):
    # Target task -> tasks trained on its encoder, in order, before it (SIQA before COPA);
    # replaces the protocol's stages of that task ([] for none).
    stages: dict[str, list[str]] = {}


class ExampleCaps(Strict):
    """Optional caps on examples read per split (per language for eval); None = all.
    `tasks`: at most this many training examples of a trained task (a fixed, seeded subset
    of what the other settings load)."""

    train: int | None = Field(None, gt=0)
    dev: int | None = Field(None, gt=0)
    eval: int | None = Field(None, gt=0)
    tasks: dict[str, Annotated[int, Field(gt=0)]] = {}


DataSource = Literal["hub", "local", "fixtures"]


class TaskDataConfig(Strict):
    """One task's own data source, replacing the sweep's for that task."""

    source: DataSource
    local_dir: str | None = None

    @model_validator(mode="after")
    def _local_needs_dir(self) -> TaskDataConfig:
        if self.source != "hub" and not self.local_dir:
            raise ValueError(f"source {self.source!r} needs local_dir")
        return self


class MlmCorpusConfig(Strict):
    """The text corpus of the `mlm` intermediate task (`evaluation.data.mlm_corpus`): a
    local directory of `<lang>.txt` files, or a Hub dataset read per language through
    `datasets.load_dataset(hub, hub_config.format(lang=...), split=..., revision=...)`."""

    local_dir: str | None = None
    hub: str | None = None
    hub_config: str | None = None  # e.g. "20231101.{lang}" (wikimedia/wikipedia)
    split: str = "train"
    text_column: str = "text"
    revision: str | None = None
    languages: list[str] | Literal["all"] = "all"  # all: every <lang>.txt of local_dir
    alpha: float = Field(0.3, gt=0, le=1)  # q_l ∝ n_l^alpha (XLM-R: 0.3)
    max_lines: int | None = Field(1000, ge=1)  # lines read per language (None: all)
    dev_lines: int = Field(8, ge=0)  # per language, held out for the dev score

    @model_validator(mode="after")
    def _one_place(self) -> MlmCorpusConfig:
        if (self.local_dir is None) == (self.hub is None):
            raise ValueError("give local_dir (a folder of <lang>.txt files) or hub, one of them")
        if self.hub is not None and self.languages == "all":
            raise ValueError("a Hub corpus needs its languages listed")
        return self


class DataConfig(Strict):
    # hub: `datasets.load_dataset`; local: the user's own mirror of the Hub layout under
    # local_dir, read exactly as it is (never written); fixtures: synthetic data that
    # `xstilts fixtures` writes into local_dir on first use (absent or empty dir only).
    source: DataSource = "hub"
    local_dir: str | None = None
    # Datasets that are not on the Hub (Mewsli-X, CCG, FEVER-NLI) in their native files:
    # <native_dir>/<dataset>/... . With source: local they live under local_dir.
    native_dir: str | None = None
    max_examples: ExampleCaps = ExampleCaps()
    tasks: dict[str, TaskDataConfig] = {}  # per-task sources (task name -> source)
    # The text of the `mlm` arm; with source: fixtures it defaults to the fixture tree's own
    # multilingual corpus, <local_dir>/mlm_corpus (`corpus()`).
    mlm_corpus: MlmCorpusConfig | None = None

    @model_validator(mode="after")
    def _local_needs_dir(self) -> DataConfig:
        if self.source != "hub" and not self.local_dir:
            raise ValueError(f"source {self.source!r} needs local_dir")
        return self

    def corpus(self) -> MlmCorpusConfig | None:
        """`mlm_corpus`, or the fixture corpus where the data are fixtures; None: no corpus."""
        if self.mlm_corpus is not None or self.source != "fixtures" or not self.local_dir:
            return self.mlm_corpus
        return MlmCorpusConfig(local_dir=str(Path(self.local_dir) / MLM_CORPUS_DIR))

    def fixture_corpus(self) -> bool:
        """Whether the corpus is the fixture tree's own (written with the fixtures)."""
        return self.mlm_corpus is None and self.corpus() is not None


class ResourceConfig(Strict):
    workers: int | None = Field(None, ge=1, le=1024)
    cpus_per_worker: float | None = Field(None, ge=0)
    gpus_per_worker: float | None = Field(None, ge=0)
    zero_stage: Literal[2, 3] | None = None
    offload: bool | None = None
    trial_resource: str | None = None  # custom resource pinning the driving trial


class ExecutionConfig(Strict):
    """How one model's phases run (`trainers.ladder.Execution`); unset: the ladder's value."""

    precision: Literal["bf16", "fp32"] | None = None
    compile: bool | None = None
    attention: Literal["sdpa", "eager"] | None = None
    fused_optimizer: bool | None = None


class Scheduling(Strict):
    max_concurrent_trials: int | None = Field(None, ge=1)
    max_failures: int = Field(2, ge=0)
    # A run whose heartbeat is older than this is presumed dead: another run may take the
    # sweep over, and the old run, should it wake, stops before its next write.
    lease_ttl_s: float = Field(60.0, ge=2.0)
    # On SIGTERM / SIGINT: how long running cells get to checkpoint before Ray is shut down.
    stop_grace_s: float = Field(30.0, ge=0.0, le=3600.0)


class CostModel(Strict):
    """GPU-hours = tokens x parameters x 6 / sustained FLOP/s (2x for inference)."""

    sustained_flops_per_gpu: float = Field(1.0e14, gt=0)
    tokens_per_example: int | None = Field(None, gt=0)  # default: the max sequence length


class ModelEntrySpec(Strict):
    """A spec's own ladder entry: a Hub id or a local Hugging Face directory.

    Architecture, shape and parameter count are read from the checkpoint's `config.json`
    and weights (`trainers.checkpoint_facts`); values stated here must agree with them.
    """

    source: Literal["hub", "local_dir"]
    location: str = Field(min_length=1)
    params: int | None = Field(None, gt=0)
    architecture: str | None = None
    layers: int | None = Field(None, gt=0)
    hidden: int | None = Field(None, gt=0)
    retrieval_layer: int | None = Field(None, ge=0)


def _check_primary_target(name: str) -> str:
    if name == "all":
        return name
    try:
        task = get_task(name)
    except UserError:
        hint = suggest(name, [*task_names(Role.TARGET), "all"])
        raise ValueError(f"unknown target task {name!r}{hint}") from None
    if task.role is not Role.TARGET:
        raise ValueError(f"{name!r} is an intermediate task, not a target task")
    return name


class PrimaryContrast(Strict):
    """The one contrast the report tests on its own (no multiplicity adjustment)."""

    intermediate_task: Annotated[str, AfterValidator(_check_intermediate)]
    target_task: Annotated[str, AfterValidator(_check_primary_target)] = "all"

    @model_validator(mode="after")
    def _not_the_baseline(self) -> PrimaryContrast:
        if self.intermediate_task == "none":
            raise ValueError("intermediate_task: `none` is the baseline, not a contrast")
        return self


class Analysis(Strict):
    """How the report analyses the sweep; never part of a trial key (results don't change)."""

    primary: PrimaryContrast | None = None


def _no_credentials(uri: str) -> str:
    if redact(uri) != uri:
        raise ValueError(
            "credentials do not belong in a spec: set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment"
        )
    return uri


class MlflowTracking(Strict):
    """MLflow: on by default. `uri`: a tracking server, a database (``sqlite:///...``) or a
    folder; unset, a file store under ``<storage>/<sweep>/mlruns`` (local storage only)."""

    enabled: bool = True
    uri: Annotated[str, AfterValidator(_no_credentials)] | None = Field(None, min_length=1)
    experiment: str | None = Field(None, min_length=1)  # default: the sweep name


class WandbTracking(Strict):
    project: str = Field(min_length=1)
    mode: Literal["offline", "online"] = "offline"  # offline: files only, no key needed
    entity: str | None = Field(None, min_length=1)


class Tracking(Strict):
    """The experiment trackers cells log to; never part of a trial key (results don't change)."""

    mlflow: MlflowTracking = MlflowTracking()
    wandb: WandbTracking | None = None
    tensorboard: bool = False
    log_every: int = Field(1, ge=1)  # training steps between logged loss / lr / samples/s


class SweepSpec(Strict):
    name: Annotated[str, AfterValidator(_check_name)]
    storage: Annotated[str, AfterValidator(_check_storage)]
    models: list[str] = Field(min_length=1)
    model_entries: dict[str, ModelEntrySpec] = {}
    intermediate_tasks: list[IntermediateTask] = Field(min_length=1)
    target_tasks: list[TargetTask] = Field(min_length=1)
    seeds: list[Seed] = Field(min_length=1)
    data: DataConfig = DataConfig()
    # The benchmark's language lists, phase-3 stages and retrieval layer
    # (`evaluation.tasks.protocols`): `xtreme` (v1, as Phang et al.) or `xtreme_r`.
    protocol: Literal["xtreme", "xtreme_r"] = DEFAULT_PROTOCOL
    # Target task -> the languages it is evaluated in, or `all` (default: the protocol's).
    languages: dict[str, list[str] | Literal["all"]] = {}
    # The named, cited defaults under phase2 / phase3 (`orchestrator.recipes`).
    recipe: Annotated[str, AfterValidator(_check_recipe)] = DEFAULT_RECIPE
    phase2: PhaseConfig = PhaseConfig()
    phase3: Phase3Config = Phase3Config()
    resources: dict[str, ResourceConfig] = {}
    execution: dict[str, ExecutionConfig] = {}
    scheduling: Scheduling = Scheduling()
    cost: CostModel = CostModel()
    analysis: Analysis | None = None
    tracking: Tracking = Tracking()

    @model_validator(mode="after")
    def _primary_in_sweep(self) -> SweepSpec:
        primary = self.analysis.primary if self.analysis else None
        if primary is None:
            return self
        if primary.intermediate_task not in self.intermediate_tasks:
            raise ValueError(
                f"analysis.primary.intermediate_task: {primary.intermediate_task!r} is not "
                "among the sweep's intermediate_tasks"
                + suggest(primary.intermediate_task, self.intermediate_tasks)
            )
        if primary.target_task != "all" and primary.target_task not in self.target_tasks:
            raise ValueError(
                f"analysis.primary.target_task: {primary.target_task!r} is not among the "
                "sweep's target_tasks" + suggest(primary.target_task, [*self.target_tasks, "all"])
            )
        return self

    # --- what the spec resolves to --------------------------------------------------------

    @property
    def bench(self) -> Protocol:
        return get_protocol(self.protocol)

    def hparam_sources(self, phase: Phase, task: str, model: str | None = None) -> dict[str, Cited]:
        """Every hyperparameter of `task` in `phase` (for `model`), with where it comes from:
        the recipe's citation, or the spec field that set it."""
        out = get_recipe(self.recipe).phase(phase).resolve(get_task(task))
        config: PhaseConfig = getattr(self, phase)
        for where, settings in config.model_layers(task, phase, model):
            for name, value in settings.given().items():
                out[name] = Cited(value, f"spec {where}")
        return out

    def hparams(self, phase: Phase, task: str, model: str | None = None) -> PhaseHparams:
        """The resolved hyperparameters of `task` in `phase` for `model` (None: without
        per-model settings). `Hparams` has exactly `PhaseHparams`'s fields, so nothing a spec
        sets is lost; `.key_dict()` is what the cell keys hash."""
        cited = self.hparam_sources(phase, task, model)
        return PhaseHparams(**{name: c.value for name, c in cited.items()})

    def eval_languages(self, task: str) -> tuple[str, ...]:
        """The languages target task `task` is scored in: the spec's selection, else the
        protocol's list; in the registry's order."""
        chosen = self.languages.get(task, "all")
        if chosen == "all":
            return self.bench.task_languages(task)
        return tuple(lang for lang in get_task(task).languages if lang in chosen)

    def stages(self, task: str) -> tuple[str, ...]:
        """Tasks trained on `task`'s encoder, in order, before it (phase 3)."""
        if task in self.phase3.stages:
            return tuple(self.phase3.stages[task])
        return self.bench.task_stages(task)


# ----------------------------------------------------------------------------- loading


MAX_SPEC_BYTES = 1 << 20  # a spec is a page of YAML; 1 MiB is far beyond any real one
MAX_DEPTH = 32  # nesting of mappings and lists
MAX_INT = 2**53  # integers beyond this are typos (and lose precision in JSON)
MAX_VALUES = 100_000  # values in a spec, aliases expanded


class _Loader(yaml.SafeLoader):
    """Safe loader that also reads ``1e-5`` as a float (YAML 1.1 would say string) and
    refuses a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # unhashable keys: the schema refuses them
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def check_values(data: Any) -> list[str]:
    """Numbers finite and bounded, nesting and size bounded (YAML aliases can make a small
    file name billions of values): one problem per offending value."""
    problems: list[str] = []
    budget = [MAX_VALUES]

    def visit(value: Any, where: str, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            return
        if depth > MAX_DEPTH:
            problems.append(f"{where or 'spec'}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, _at(where, key), depth + 1)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(item, f"{where}[{i}]", depth + 1)
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where}: {value} is not a finite number")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            problems.append(f"{where}: integer {value} is out of range (at most 2^53)")

    visit(data, "", 0)
    if budget[0] < 0:
        return [f"spec: more than {MAX_VALUES} values (YAML aliases expanding?)"]
    return problems


def _at(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


def builtin_spec_path(name: str) -> Path:
    return Path(str(resources.files("orchestrator") / "specs" / f"{name}.yaml"))


def resolve_spec_path(ref: str) -> Path:
    """A spec reference is a path to a YAML file or the name of a built-in spec."""
    path = Path(ref)
    if path.is_file():
        return path
    if ref in BUILTIN_SPECS:
        return builtin_spec_path(ref)
    hint = suggest(ref, BUILTIN_SPECS)
    raise UserError(f"spec {ref!r}: no such file and no built-in spec of that name{hint}")


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise UserError(f"{path}: {size} bytes; a spec is at most {MAX_SPEC_BYTES} bytes")
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to read") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{where}: invalid YAML: {err.problem}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a spec must be a YAML mapping, got {type(data).__name__}")
    problems = check_values(data)
    if problems:
        raise SpecError(str(path), problems)
    return data


def load_spec(ref: str, *, storage: str | None = None, name: str | None = None) -> SweepSpec:
    """Read, override and validate a spec; raise UserError listing every problem."""
    path = resolve_spec_path(ref)
    raw = read_yaml(path)
    if storage is not None:
        raw["storage"] = storage
    if name is not None:
        raw["name"] = name
    return validate(raw, origin=str(path))


def validate(raw: dict[str, Any], origin: str = "spec") -> SweepSpec:
    problems = cross_check(raw)
    spec = None
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as err:
        problems = [*format_errors(err, SweepSpec), *problems]
    if problems:
        raise SpecError(origin, problems)
    assert spec is not None
    return spec


class SpecError(UserError):
    """Every problem of one spec; str() is one line per problem."""

    def __init__(self, origin: str, problems: list[str]) -> None:
        self.origin = origin
        self.problems = problems
        super().__init__("\n".join(f"{origin}: {p}" for p in problems))
