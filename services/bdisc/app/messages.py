"""The typed contract between bdisc's services: every command, work item and event that
travels on the message bus is one frozen model here, named for what it says.

    gateway      --SubmitDiscovery-->  orchestrator --IngestWork-->  ingestion
    ingestion    --Planned | PlanFailed-->                            orchestrator
    orchestrator --EmbedWork-->   embedding   --Embedded | EmbedFailed-->   orchestrator
    orchestrator --ClusterWork--> clustering  --Clustered | ClusterFailed--> orchestrator
    orchestrator --LinkWork-->    clustering  --Linked | LinkFailed-->       orchestrator
    gateway      --SubmitExport-->      orchestrator --ExportWork-->   export
    export       --Exported | ExportFailed-->                          orchestrator
    gateway      --SubmitEvaluation-->  orchestrator --EvaluateWork--> evaluation
    evaluation   --Evaluated | EvaluateFailed-->                       orchestrator
    gateway      --SubmitTraining | SubmitClassify | SubmitSearch | SubmitDuplicates |
                   SubmitSuggest-->  orchestrator --TrainWork | ClassifyWork | SearchWork |
                   DuplicatesWork | SuggestWork--> training
    training     --Trained | Classified | Searched | DuplicatesFound | Suggested (or
                   their *Failed)-->                                    orchestrator
    gateway      --RetryFailed | Cancel-->                             orchestrator
    a dead letter of any work --work.failed(error) | WorkUnreadable--> orchestrator

On the wire a model is the payload of a bus ``Message`` (the envelope: stage, job id,
idempotency key, schema version, attempt): ``{"kind": <its kind>, **its fields}``.
``to_message`` and ``read`` are the only places that turn one into the other;
parameters (``AnalysisParams``, ``DiscoverySpec``, ...) are checked when a model is built,
so a request is validated once at the edge and every hop after that gets typed values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from bdisc import tracing
from bdisc.app import stages
from bdisc.discovery.job_spec import DiscoverySpec
from bdisc.discovery.linking import LinkParams
from bdisc.discovery.recordings import Subset
from bdisc.errors import BdiscError
from bdisc.params import AnalysisParams
from bdisc.pipeline.parts import Part
from bdisc.ports.message_bus import MalformedMessage, Message
from bdisc.ports.object_store import check_key
from bdisc.training.margin import DEFAULT_EXPLORE

T = TypeVar("T")


def _parsed(cls: type[T], parse: Callable[[dict[str, Any]], T]) -> Callable[[object], T]:
    """A pydantic before-validator: the value as it is, or parsed from its JSON dict."""

    def validate(value: object) -> T:
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"expected an object of {cls.__name__} fields")
        try:
            return parse(dict(value))
        except (TypeError, KeyError, AttributeError) as exc:  # a field of the wrong shape
            raise ValueError(f"invalid {cls.__name__}: {exc}") from exc

    return validate


# Parameter records of the domain, carried typed and written as the domain writes them.
Analysis = Annotated[
    AnalysisParams,
    BeforeValidator(_parsed(AnalysisParams, AnalysisParams.from_dict)),
    PlainSerializer(AnalysisParams.as_dict),
]
Spec = Annotated[
    DiscoverySpec,
    BeforeValidator(_parsed(DiscoverySpec, DiscoverySpec.from_dict)),
    PlainSerializer(DiscoverySpec.as_dict),
]
SubsetRule = Annotated[
    Subset, BeforeValidator(_parsed(Subset, Subset.from_dict)), PlainSerializer(Subset.as_dict)
]
Link = Annotated[
    LinkParams,
    BeforeValidator(_parsed(LinkParams, LinkParams.from_dict)),
    PlainSerializer(LinkParams.as_dict),
]


class Contract(BaseModel):
    """One message of the contract. ``kind`` names it on the wire, ``stage`` is the queue
    it travels on."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
    kind: ClassVar[str]
    stage: ClassVar[str]


class Command(Contract):
    """Asks the orchestrator (the one writer of job state) to do something."""

    stage: ClassVar[str] = stages.EVENTS


class Event(Contract):
    """Tells the orchestrator what became of a work item."""

    stage: ClassVar[str] = stages.EVENTS


class Done(Event):
    """A work item's success: where its result is."""

    output: str


class Failed(Event):
    """A work item's failure: why (shown to the user, per recording or deployment)."""

    error: str


class Work(Contract):
    """One item of work for a stage's workers."""

    project: str

    def failed(self, error: str) -> Failed:
        """The event that settles this item as failed (also for its dead letter)."""
        raise NotImplementedError


# -- shared records -------------------------------------------------------------------


# The item of a part of a long recording: <audio key>#<first>-<end>@<object version>
# (audio keys end in an audio extension, so no whole recording's key looks like this).
_PART_ITEM = re.compile(r"^(?P<key>.+)#(?P<first>\d+)-(?P<end>\d+|end)@(?P<version>[^#@/.]+)$")


class PlannedRecording(BaseModel):
    """A recording to embed, or one part of a long one (windows ``first`` to
    ``first + count``; count None: to the end), read from the store by ranges."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    key: str  # object key of the audio
    group: str  # its deployment
    first: int = Field(default=0, ge=0)
    count: int | None = Field(default=None, ge=1)
    version: str = ""  # the object's content identity, for parts (they read no whole file)

    @property
    def part(self) -> Part | None:
        return None if self.version == "" else Part(self.first, self.count)

    @property
    def item(self) -> str:
        """The job's item for it: the audio key, with the part for a part."""
        part = self.part
        return self.key if part is None else f"{self.key}#{part.key}@{self.version}"

    @classmethod
    def from_item(cls, item: str, group: str) -> PlannedRecording:
        """The inverse of ``item``."""
        found = _PART_ITEM.match(item)
        if found is None:
            return cls(key=item, group=group)
        first = int(found["first"])
        count = None if found["end"] == "end" else int(found["end"]) - first
        return cls(
            key=found["key"], group=group, first=first, count=count, version=found["version"]
        )


class RefusedRecording(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    key: str
    group: str
    error: str


class EmbeddedRecording(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    rel: str  # path below the project's audio, e.g. siteA/r1.wav
    embeddings: str  # object key of its embeddings Parquet (or of one part's)
    first: int = 0  # a part's first window: parts are read in this order


class ClusterMove(BaseModel):
    """Where an old cluster of a deployment went when it was clustered again (see
    ``discovery/relabel.py``): its new number, or, if none holds most of it, its windows
    (recording, start_s, end_s), so that its labels can stay with them."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    old: int
    new: int | None
    overlap: float
    windows: tuple[tuple[str, float, float], ...] = ()


class SheetLabel(BaseModel):
    """A reviewer's label, as the label store keeps it (``target``: ``cluster:3``,
    ``type:7``, ``window:north/r1.wav:12.000:15.000``; sound types in folder ``""``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    folder: str
    target: str
    label: str


class EvaluationParams(BaseModel):
    """What an evaluation job scores (uploaded files of the project)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    detections: str = Field(description="uploaded file or folder, e.g. detections/")
    truth: str = Field(description="uploaded file or folder of annotations")
    species_map: str | None = Field(default=None, description="uploaded species map (code, names)")
    granularity: Literal["file", "window", "sound", "minute"] = "file"
    threshold: float = Field(default=0.25, ge=0.0, le=1.0)
    min_overlap_s: float = Field(default=0.5, ge=0.0)


class ExportParams(BaseModel):
    """How labelled clusters become training clips."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    pad_s: float = Field(default=0.0, ge=0.0, le=10.0, description="seconds added to both ends")
    sample_rate: int | None = Field(
        default=None,
        ge=8000,
        le=384_000,
        description="resample the clips; default: the recording's",
    )


JOB_ID = r"^[A-Za-z0-9_-]{1,64}$"  # a job id (a model id is its training job id)
MAX_TOP = 1000  # matches a search returns at most


class TrainParams(BaseModel):
    """How a head is trained on a discovery job's labelled windows (``bdisc train``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    head: Literal["linear", "mlp"] = "linear"
    hidden: int = Field(default=256, ge=1, le=4096, description="mlp: hidden units")
    epochs: int = Field(default=100, ge=1, le=10_000, description="at most (early stopping)")
    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0)
    batch_size: int = Field(default=32, ge=1, le=4096)
    balance: Literal["none", "upsample", "class-weights"] = "none"
    patience: int = Field(default=10, ge=1, le=10_000)
    weight_decay: float = Field(default=1e-4, ge=0.0, le=1.0)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    val_fraction: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="recordings held out for validation"
    )
    folds: int | None = Field(default=None, ge=2, le=20, description="k-fold instead")
    accept_suggestions: bool = Field(
        default=False, description="suggested labels of linked sound types count as labels"
    )
    exclude_duplicates: str | None = Field(
        default=None,
        pattern=JOB_ID,
        description="a duplicates job of the same discovery job: its copies are left out",
    )


class ClassifyParams(BaseModel):
    """A trained model applied to a discovery job's stored embeddings (``bdisc classify``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    model_id: str = Field(pattern=JOB_ID, description="the model (its training job's id)")
    formats: tuple[Literal["csv", "table", "audacity", "kaleidoscope"], ...] = Field(
        default=("csv",), min_length=1, max_length=4
    )
    min_conf: float = Field(default=0.25, ge=0.0, le=1.0)
    sensitivity: float = Field(default=1.0, ge=0.5, le=1.5)
    merge_consecutive: int = Field(default=1, ge=1, le=100)


class StoredWindow(BaseModel):
    """A stored window as a search's example: its recording (as results name it, e.g.
    ``north/r1.wav``) and start."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    recording: str = Field(min_length=1, max_length=1024)
    start_s: float = Field(ge=0.0, le=1e7)


class ExampleSpan(BaseModel):
    """A span of uploaded audio as a search's example: a project file (``files/...``) or
    recording (``audio/...``), from ``start_s`` to ``end_s`` (default: one window)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str = Field(
        min_length=1, max_length=1024, pattern=r"^(files|audio)/", description="files/x.wav"
    )
    start_s: float = Field(default=0.0, ge=0.0, le=1e7)
    end_s: float | None = Field(default=None, gt=0.0, le=1e7)

    @model_validator(mode="after")
    def _span(self) -> ExampleSpan:
        try:
            check_key(self.path.partition("/")[2])
        except BdiscError as exc:
            raise ValueError(f"path: {exc.message}") from exc
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError("end_s must be after start_s")
        return self


class SearchParams(BaseModel):
    """Search by example over a discovery job's stored windows (``bdisc search``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    window: StoredWindow | None = None
    example: ExampleSpan | None = None
    top: int = Field(default=50, ge=1, le=MAX_TOP)
    max_distance: float | None = Field(default=None, ge=0.0, le=2.0, description="cosine")
    montage_cap: int = Field(default=48, ge=1, le=200)

    @model_validator(mode="after")
    def _one_example(self) -> SearchParams:
        if (self.window is None) == (self.example is None):
            raise ValueError("give one example: a stored window or a span of uploaded audio")
        return self


class DuplicatesParams(BaseModel):
    """Recordings and stretches stored twice (``bdisc duplicates``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min_windows: int = Field(default=5, ge=1, le=10_000)
    max_distance: float = Field(default=0.02, ge=0.0, lt=1.0)
    neighbours: int = Field(default=10, ge=1, le=100)
    silence_db: float = Field(default=-100.0, ge=-200.0, le=0.0)


class SuggestParams(BaseModel):
    """Windows for a reviewer to label next (``bdisc suggest``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    model_id: str = Field(pattern=JOB_ID, description="the model (its training job's id)")
    n: int = Field(default=50, ge=1, le=10_000)
    strategy: Literal["margin", "top2", "random"] = "margin"
    focus: str | None = Field(default=None, min_length=1, max_length=200, description="a class")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    explore: float = Field(
        default=DEFAULT_EXPLORE, ge=0.0, le=1.0, description="share of picks drawn at random"
    )
    accept_suggestions: bool = False


class StoredResults(BaseModel):
    """A finished discovery job's results as a training-stage job reads them: its
    clustered deployments, its embedded recordings (a long one in parts) and its labels."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    discovery_job: str
    groups: tuple[str, ...]
    recordings: tuple[EmbeddedRecording, ...]
    labels: tuple[SheetLabel, ...] = ()


# -- commands (gateway -> orchestrator) ------------------------------------------------


class SubmitDiscovery(Command):
    kind: ClassVar[str] = "submit_discovery"
    project: str
    prefix: str = ""  # only recordings under this folder
    spec: Spec


class SubmitEvaluation(Command):
    kind: ClassVar[str] = "submit_evaluation"
    project: str
    request: EvaluationParams


class SubmitExport(Command):
    kind: ClassVar[str] = "submit_export"
    project: str
    discovery_job: str
    options: ExportParams = ExportParams()


class SubmitOnResults(Command):
    """A job over a finished discovery job's results (training, classification, search,
    duplicates, suggestions)."""

    project: str
    discovery_job: str


class SubmitTraining(SubmitOnResults):
    kind: ClassVar[str] = "submit_training"
    options: TrainParams = TrainParams()


class SubmitClassify(SubmitOnResults):
    kind: ClassVar[str] = "submit_classify"
    options: ClassifyParams


class SubmitSearch(SubmitOnResults):
    kind: ClassVar[str] = "submit_search"
    options: SearchParams


class SubmitDuplicates(SubmitOnResults):
    kind: ClassVar[str] = "submit_duplicates"
    options: DuplicatesParams = DuplicatesParams()


class SubmitSuggest(SubmitOnResults):
    kind: ClassVar[str] = "submit_suggest"
    options: SuggestParams


class RetryFailed(Command):
    kind: ClassVar[str] = "retry_failed"


class Cancel(Command):
    kind: ClassVar[str] = "cancel"


# -- events (workers -> orchestrator) ---------------------------------------------------


class Planned(Event):
    kind: ClassVar[str] = "planned"
    items: tuple[PlannedRecording, ...]
    refused: tuple[RefusedRecording, ...] = ()
    subset: dict[str, Any] = {}  # what the subset rules kept and dropped
    manifest: str = ""  # object key of the table of every recording


class PlanFailed(Failed):
    kind: ClassVar[str] = "plan_failed"


class Embedded(Done):
    kind: ClassVar[str] = "embedded"
    key: str
    group: str


class EmbedFailed(Failed):
    kind: ClassVar[str] = "embed_failed"
    key: str
    group: str


class Clustered(Done):
    kind: ClassVar[str] = "clustered"
    group: str
    moves: tuple[ClusterMove, ...] = ()  # clustered again: where the old clusters went


class ClusterFailed(Failed):
    kind: ClassVar[str] = "cluster_failed"
    group: str


class Linked(Done):
    kind: ClassVar[str] = "linked"
    round: str


class LinkFailed(Failed):
    kind: ClassVar[str] = "link_failed"
    round: str


class Exported(Done):
    kind: ClassVar[str] = "exported"
    report: dict[str, Any] = {}


class ExportFailed(Failed):
    kind: ClassVar[str] = "export_failed"


class Evaluated(Done):
    kind: ClassVar[str] = "evaluated"


class EvaluateFailed(Failed):
    kind: ClassVar[str] = "evaluate_failed"


class Reported(Done):
    """A training-stage job's success: where its output is, and what it found."""

    report: dict[str, Any] = {}


class TrainingFailed(Failed):
    """A training-stage job's failure."""


class Trained(Reported):
    kind: ClassVar[str] = "trained"


class TrainFailed(TrainingFailed):
    kind: ClassVar[str] = "train_failed"


class Classified(Reported):
    kind: ClassVar[str] = "classified"


class ClassifyFailed(TrainingFailed):
    kind: ClassVar[str] = "classify_failed"


class Searched(Reported):
    kind: ClassVar[str] = "searched"


class SearchFailed(TrainingFailed):
    kind: ClassVar[str] = "search_failed"


class DuplicatesFound(Reported):
    kind: ClassVar[str] = "duplicates_found"


class DuplicatesFailed(TrainingFailed):
    kind: ClassVar[str] = "duplicates_failed"


class Suggested(Reported):
    kind: ClassVar[str] = "suggested"


class SuggestFailed(TrainingFailed):
    kind: ClassVar[str] = "suggest_failed"


class WorkUnreadable(Failed):
    """A dead letter that no longer reads as work of its stage: its job cannot go on."""

    kind: ClassVar[str] = "work_unreadable"
    dead_stage: str


# -- work (orchestrator -> stages) --------------------------------------------------------


class IngestWork(Work):
    kind: ClassVar[str] = "ingest"
    stage: ClassVar[str] = stages.INGEST
    prefix: str = ""
    subset: SubsetRule = Subset()
    params: Analysis | None = None  # the job's windows: long recordings are planned in parts

    def failed(self, error: str) -> Failed:
        return PlanFailed(error=error)


class EmbedWork(Work):
    kind: ClassVar[str] = "embed"
    stage: ClassVar[str] = stages.EMBED
    audio_key: str
    rel: str
    group: str
    params: Analysis
    recording: PlannedRecording | None = None  # a part of a long recording (None: whole)

    @property
    def item(self) -> str:
        return self.audio_key if self.recording is None else self.recording.item

    def failed(self, error: str) -> Failed:
        return EmbedFailed(key=self.item, group=self.group, error=error)


class ClusterWork(Work):
    kind: ClassVar[str] = "cluster"
    stage: ClassVar[str] = stages.CLUSTER
    group: str
    recordings: tuple[EmbeddedRecording, ...]
    spec: Spec

    def failed(self, error: str) -> Failed:
        return ClusterFailed(group=self.group, error=error)


class LinkWork(Work):
    """The fan-in step, served by the clustering service: every clustered deployment's
    clusters -> sound types."""

    kind: ClassVar[str] = "link"
    stage: ClassVar[str] = stages.CLUSTER
    groups: tuple[str, ...]
    link: Link = LinkParams()
    round: str

    def failed(self, error: str) -> Failed:
        return LinkFailed(round=self.round, error=error)


class ExportWork(Work):
    kind: ClassVar[str] = "export"
    stage: ClassVar[str] = stages.EXPORT
    discovery_job: str
    options: ExportParams = ExportParams()
    groups: tuple[str, ...]  # the clustered deployments
    recordings: tuple[PlannedRecording, ...]  # the embedded recordings (clip sources)
    labels: tuple[SheetLabel, ...] = ()  # every label of the job, from the label store

    def failed(self, error: str) -> Failed:
        return ExportFailed(error=error)


class EvaluateWork(Work):
    kind: ClassVar[str] = "evaluate"
    stage: ClassVar[str] = stages.EVALUATE
    request: EvaluationParams

    def failed(self, error: str) -> Failed:
        return EvaluateFailed(error=error)


class OnResultsWork(Work):
    """Work of the training stage over a discovery job's stored results; ``output`` is
    the object prefix its outcome is published under."""

    stage: ClassVar[str] = stages.TRAIN
    source: StoredResults
    output: str


class TrainWork(OnResultsWork):
    kind: ClassVar[str] = "train"
    options: TrainParams
    exclude: str = ""  # object key of the spans to leave out (duplicates_exclude.csv)

    def failed(self, error: str) -> Failed:
        return TrainFailed(error=error)


class ClassifyWork(OnResultsWork):
    kind: ClassVar[str] = "classify"
    options: ClassifyParams
    model: str  # the model folder's object prefix

    def failed(self, error: str) -> Failed:
        return ClassifyFailed(error=error)


class SearchWork(OnResultsWork):
    """``output`` is a review group of the discovery job (``.../results/search-<job>/``)."""

    kind: ClassVar[str] = "search"
    options: SearchParams

    def failed(self, error: str) -> Failed:
        return SearchFailed(error=error)


class DuplicatesWork(OnResultsWork):
    kind: ClassVar[str] = "duplicates"
    options: DuplicatesParams

    def failed(self, error: str) -> Failed:
        return DuplicatesFailed(error=error)


class SuggestWork(OnResultsWork):
    """``output`` is a review group of the discovery job (``.../results/suggest-<job>/``)."""

    kind: ClassVar[str] = "suggest"
    options: SuggestParams
    model: str

    def failed(self, error: str) -> Failed:
        return SuggestFailed(error=error)


CONTRACT: tuple[type[Contract], ...] = (
    SubmitDiscovery,
    SubmitEvaluation,
    SubmitExport,
    SubmitTraining,
    SubmitClassify,
    SubmitSearch,
    SubmitDuplicates,
    SubmitSuggest,
    RetryFailed,
    Cancel,
    Planned,
    PlanFailed,
    Embedded,
    EmbedFailed,
    Clustered,
    ClusterFailed,
    Linked,
    LinkFailed,
    Exported,
    ExportFailed,
    Evaluated,
    EvaluateFailed,
    Trained,
    TrainFailed,
    Classified,
    ClassifyFailed,
    Searched,
    SearchFailed,
    DuplicatesFound,
    DuplicatesFailed,
    Suggested,
    SuggestFailed,
    WorkUnreadable,
    IngestWork,
    EmbedWork,
    ClusterWork,
    LinkWork,
    ExportWork,
    EvaluateWork,
    TrainWork,
    ClassifyWork,
    SearchWork,
    DuplicatesWork,
    SuggestWork,
)
KINDS: dict[str, type[Contract]] = {c.kind: c for c in CONTRACT}
assert len(KINDS) == len(CONTRACT), "two messages of the contract share a kind"

C = TypeVar("C", bound=Contract)


def payload(body: Contract) -> dict[str, Any]:
    """A model as JSON: its kind and its fields."""
    return {"kind": body.kind, **body.model_dump(mode="json")}


def to_message(job_id: str, idempotency_key: str, body: Contract) -> Message:
    """The envelope for ``body`` on its stage's queue, carrying the current trace."""
    return Message(body.stage, job_id, idempotency_key, payload(body), trace=tracing.carrier())


def reply(message: Message, event: Event) -> Message:
    """A worker's event about ``message``, keyed by the message and the outcome (a
    redelivered message reports under the same key)."""
    return to_message(message.job_id, f"{message.idempotency_key}:{event.kind}", event)


def read(message: Message) -> Contract:
    """The model a message carries; MalformedMessage (the bus dead-letters it) when the
    kind is unknown, the message is on another stage's queue, or a field is wrong."""
    data = dict(message.payload)
    kind = data.pop("kind", None)
    cls = KINDS.get(str(kind))
    if cls is None:
        raise MalformedMessage(f"unknown message kind {kind!r}")
    if cls.stage != message.stage:
        raise MalformedMessage(f"a {kind} message on the {message.stage} queue")
    try:
        return cls.model_validate(data)
    except PydanticValidationError as exc:
        raise MalformedMessage(f"invalid {kind} message: {_first_error(exc)}") from exc
    except BdiscError as exc:  # a parameter record refused its values
        raise MalformedMessage(f"invalid {kind} message: {exc.message}") from exc


def read_as(message: Message, cls: type[C]) -> C:
    body = read(message)
    if not isinstance(body, cls):
        raise MalformedMessage(f"expected {cls.__name__}, got {body.kind}")
    return body


def _first_error(exc: PydanticValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))
