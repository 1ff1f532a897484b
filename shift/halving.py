"""Successive halving with racing on the test set (docs/halving.md): schedule and machine.

Arms are the candidate models; a pull is one chunk of ``chunk_rows`` training rows; the
budget is counted in pulls. :func:`plan_schedule` computes every round before anything runs
(EXPLAIN shows it); :class:`SuccessiveHalving` takes recorded losses (and error counts) and
returns decisions. It reads no clock and no randomness, so the broker drives it with real
results and the simulator with a fake clock, and :meth:`SuccessiveHalving.to_json` lets
the broker persist it at every transition and resume exactly after a restart.

Rules beyond the design text (docs/halving.md has the worked tables):

* ``L`` is the smallest integer with ``eta ** L >= M``, and 1 for a single arm.
* A single arm has nothing to halve: one round in which it sees the whole training set
  and the whole test set, whatever ``CHUNK`` and ``BUDGET`` say.
* ``r_0 = 0`` (a budget below ``M * L`` pulls) is a :class:`SchedulerError` that names the
  smallest budget that works.
* Exhausted data: a round's prefix is capped at the training-set size, and the first round
  whose prefix covers the whole training set is the last one (the finalists).
* Racing (the default when the test-set size is known): a round before the last scores on
  a prefix of the test set that grows with the training prefix; the last round scores on
  the whole test set. An arm that is confidently worse than the round's leader goes, even
  within the top ``ceil(n/eta)``; below the cut, an arm survives unless it is confidently
  worse than the cut arm (:mod:`shift.error_bounds`), so a round may keep more arms than
  ``ceil(n/eta)`` or fewer. A lone survivor goes straight to the last round.
* A BENCHMARK halves once over the aggregated score of its pairs: a round fits the same
  prefix of every pair's training set, capped at each set's size (:func:`pair_rows`).
* Ties break by loss, then arm name. Finalists rank first, then the arms eliminated in later
  rounds before those eliminated earlier, each group by loss: an eliminated arm is never
  ranked above an arm that beat it, whatever the losses on different prefixes say.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from shift.error_bounds import confidently_worse
from shift.errors import SchedulerError
from shift.payloads import BLOCK_ROWS

AUTO: Literal["auto"] = "auto"
STATE_VERSION = 3
_STATE_KIND = "successive_halving"
DEFAULT_DELTA = 0.05
"""Racing's default probability that a round eliminates its best arm (see docs/halving.md)."""
DEFAULT_TEST_MIN_ROWS = BLOCK_ROWS
"""Racing's default smallest test prefix: one feature block."""

ChunkSetting = int | Literal["auto"]
BudgetSetting = int | Literal["auto"]


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def planned_rounds(num_arms: int, eta: int = 2) -> int:
    """Return ``L = ceil(log_eta M)`` computed exactly with integers, and 1 for one arm.

    Args:
        num_arms: ``M``, the number of arms (at least 1).
        eta: The halving factor (at least 2).
    """
    rounds, reach = 0, 1
    while reach < num_arms:
        reach *= eta
        rounds += 1
    return max(1, rounds)


def _setting(what: str, value: object, unit: str, example: str) -> int | Literal["auto"]:
    """Validate a ``CHUNK``/``BUDGET`` value: a positive whole number or ``"auto"``."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise SchedulerError(
        f"{what} must be a positive whole number of {unit} or AUTO, got {value!r}; "
        f"use e.g. {what} {example} or {what} AUTO"
    )


def _whole(what: str, value: object, minimum: int, fix: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    raise SchedulerError(f"{what} must be a whole number >= {minimum}, got {value!r}; {fix}")


def _delta(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1:
        return float(value)
    raise SchedulerError(
        f"racing's delta must be a probability strictly between 0 and 1, got {value!r}; "
        f"use e.g. delta={DEFAULT_DELTA}"
    )


def test_prefix(
    train_rows: int, train_total: int, test_total: int, min_rows: int, block_rows: int
) -> int:
    """Test rows a racing round before the last scores on.

    The same share of the test set as the round's share of the training set, at least
    ``min_rows``, rounded up to whole feature blocks (a block costs the same however few of
    its rows are used), and at most the whole test set.
    """
    share = _ceil_div(test_total * train_rows, train_total)
    rows = _ceil_div(max(share, min_rows), block_rows) * block_rows
    return min(rows, test_total)


def pair_rows(train_rows: int, sizes: Sequence[int]) -> tuple[int, ...]:
    """Training rows each (train, test) pair of a BENCHMARK fits in a round of ``train_rows``.

    One machine halves over the aggregated score of every pair; its training-set size is
    the largest training set's. A round fits the first ``train_rows`` rows of each pair's
    training set, capped at that set's size: a small set is whole from the round whose
    prefix reaches it, and the finalists see every set whole, as the exhaustive search does.
    """
    if train_rows < 0 or any(s < 0 for s in sizes):
        raise SchedulerError(f"pair_rows needs counts, got {train_rows} and {list(sizes)}")
    return tuple(min(train_rows, s) for s in sizes)


@dataclass(frozen=True)
class Round:
    """One planned round of successive halving.

    Attributes:
        index: ``k``, from 0.
        arms: ``|S_k|`` as planned; racing may keep more (arms within the margin).
        pulls: ``r_k``, chunks each arm gets in this round.
        total_pulls: ``R_k``, chunks each arm has had after this round.
        train_rows: Rows each arm's proxy is fitted on: ``min(chunk_rows * R_k, train_rows)``.
        advancing: Arms promoted by rank (``ceil(arms / eta)``); 0 in the last round, whose
            arms are all finalists.
        test_rows: Test rows each arm is scored on (``None``: the whole test set, size
            unknown to the schedule).
    """

    index: int
    arms: int
    pulls: int
    total_pulls: int
    train_rows: int
    advancing: int
    test_rows: int | None = None

    @property
    def final(self) -> bool:
        """True for the last round: its arms are the finalists."""
        return self.advancing == 0

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form (EXPLAIN prints it)."""
        return {
            "round": self.index,
            "arms": self.arms,
            "pulls": self.pulls,
            "total_pulls": self.total_pulls,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "advancing": self.advancing,
        }


@dataclass(frozen=True)
class Schedule:
    """The resolved plan of a halving search, computable before running.

    Attributes:
        num_arms: ``M``.
        train_rows: Size of the training set.
        chunk_rows: ``C`` after resolving ``AUTO``.
        budget_pulls: ``B`` after resolving ``AUTO``.
        eta: The halving factor.
        planned_rounds: ``L``; more than ``len(rounds)`` when the data ran out early.
        rounds: The rounds that will run.
        test_rows: Size of the test set (``None``: unknown; every round scores on all of it).
        racing: Whether rounds before the last score on a test prefix and keep the arms
            within the confidence margin of the cut.
    """

    num_arms: int
    train_rows: int
    chunk_rows: int
    budget_pulls: int
    eta: int
    planned_rounds: int
    rounds: tuple[Round, ...]
    test_rows: int | None = None
    racing: bool = False

    @property
    def truncated(self) -> bool:
        """True when a round before ``L - 1`` already covers the whole training set."""
        return len(self.rounds) < self.planned_rounds

    @property
    def final_rows(self) -> int:
        """Training rows behind each finalist's score."""
        return self.rounds[-1].train_rows

    @property
    def pulls_used(self) -> int:
        """Pulls the plan spends: ``sum(|S_k| * r_k)`` (at most the budget if ``M > 1``)."""
        return sum(r.arms * r.pulls for r in self.rounds)

    @property
    def fitted_rows(self) -> int:
        """Training rows summed over every proxy fit of the plan (``sum |S_k| * rows_k``)."""
        return sum(r.arms * r.train_rows for r in self.rounds)

    def sampled(self, index: int) -> bool:
        """True when round ``index`` scores on a strict prefix of the test set."""
        rows = self.rounds[index].test_rows
        return self.test_rows is not None and rows is not None and rows < self.test_rows

    def round_of(self, train_rows: int) -> int:
        """Return the round whose prefix has ``train_rows`` rows.

        Raises:
            SchedulerError: No round fits on that many rows.
        """
        if isinstance(train_rows, int) and not isinstance(train_rows, bool):
            for plan in self.rounds:
                if plan.train_rows == train_rows:
                    return plan.index
        valid = ", ".join(str(r.train_rows) for r in self.rounds)
        raise SchedulerError(
            f"no halving round fits a proxy on {train_rows!r} training rows; "
            f"this schedule uses {valid}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form (EXPLAIN prints it)."""
        return {
            "num_arms": self.num_arms,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "chunk_rows": self.chunk_rows,
            "budget_pulls": self.budget_pulls,
            "eta": self.eta,
            "planned_rounds": self.planned_rounds,
            "truncated": self.truncated,
            "racing": self.racing,
            "pulls_used": self.pulls_used,
            "rounds": [r.to_dict() for r in self.rounds],
        }


def plan_schedule(
    num_arms: int,
    train_rows: int,
    chunk: ChunkSetting = AUTO,
    budget: BudgetSetting = AUTO,
    eta: int = 2,
    test_rows: int | None = None,
    racing: bool = True,
    test_min_rows: int = DEFAULT_TEST_MIN_ROWS,
    block_rows: int = BLOCK_ROWS,
) -> Schedule:
    """Resolve ``CHUNK``/``BUDGET`` and compute every round of a halving search.

    ``AUTO`` budget is ``M * L`` pulls. ``AUTO`` chunk is the smallest ``C`` with
    ``C * R_{L-1} >= train_rows``: the finalists see the whole training set. With
    ``racing`` and a known ``test_rows``, each round before the last scores on
    :func:`test_prefix` test rows; otherwise every round scores on the whole test set.

    Args:
        num_arms: ``M``, the number of candidate models.
        train_rows: Rows in the training set.
        chunk: ``C`` in rows, or ``"auto"``.
        budget: ``B`` in pulls, or ``"auto"``.
        eta: Halving factor; ``ceil(|S_k| / eta)`` arms survive each round by rank.
        test_rows: Rows in the test set (``None``: unknown).
        racing: Score early rounds on test prefixes (see the module docstring).
        test_min_rows: Racing's smallest test prefix.
        block_rows: Rows per feature block (test prefixes are whole blocks).

    Returns:
        The schedule.

    Raises:
        SchedulerError: A value is invalid, or the budget gives round 0 no pulls.
    """
    eta = _whole("eta", eta, 2, "use eta=2 to keep the better half each round")
    num_arms = _whole(
        "the number of models", num_arms, 1, "successive halving needs at least one model"
    )
    train_rows = _whole(
        "the training-set size (rows)",
        train_rows,
        1,
        "successive halving needs a non-empty training set",
    )
    if test_rows is not None:
        test_rows = _whole(
            "the test-set size (rows)", test_rows, 1, "score on a non-empty test set"
        )
    test_min_rows = _whole(
        "racing's smallest test prefix (rows)", test_min_rows, 1, f"use {BLOCK_ROWS}"
    )
    block_rows = _whole("the feature block size (rows)", block_rows, 1, f"use {BLOCK_ROWS}")
    racing = bool(racing)
    rounds_l = planned_rounds(num_arms, eta)
    chunk = _setting("CHUNK", chunk, "training rows", "1000")
    budget = _setting("BUDGET", budget, "pulls (chunks)", str(num_arms * rounds_l))
    sizes = [_ceil_div(num_arms, eta**k) for k in range(rounds_l)]
    budget_pulls = num_arms * rounds_l if budget == AUTO else budget
    pulls = [budget_pulls // (size * rounds_l) for size in sizes]
    if num_arms > 1 and pulls[0] == 0:
        raise SchedulerError(
            f"BUDGET {budget_pulls} is too small for {num_arms} models: halving plays "
            f"{rounds_l} rounds, and round 0 would give each model "
            f"floor({budget_pulls} / ({num_arms} x {rounds_l})) = 0 pulls; "
            f"use BUDGET {num_arms * rounds_l} or more (models x rounds), or BUDGET AUTO"
        )
    totals: list[int] = []
    for pull in pulls:
        totals.append(pull + (totals[-1] if totals else 0))
    chunk_rows = _ceil_div(train_rows, totals[-1]) if chunk == AUTO else chunk

    def scored(rows: int, last: bool) -> int | None:
        if last or not racing or test_rows is None:
            return test_rows
        return test_prefix(rows, train_rows, test_rows, test_min_rows, block_rows)

    if num_arms == 1:
        # Nothing to halve: the one arm sees the whole training set.
        whole = _ceil_div(train_rows, chunk_rows)
        only = Round(0, 1, whole, whole, train_rows, 0, test_rows)
        return Schedule(1, train_rows, chunk_rows, budget_pulls, eta, 1, (only,), test_rows, racing)

    rounds: list[Round] = []
    for k in range(rounds_l):
        rows = min(chunk_rows * totals[k], train_rows)
        last = k == rounds_l - 1 or rows == train_rows
        advancing = 0 if last else sizes[k + 1]
        rounds.append(Round(k, sizes[k], pulls[k], totals[k], rows, advancing, scored(rows, last)))
        if last:
            break
    return Schedule(
        num_arms,
        train_rows,
        chunk_rows,
        budget_pulls,
        eta,
        rounds_l,
        tuple(rounds),
        test_rows,
        racing,
    )


@dataclass(frozen=True)
class HalvingConfig:
    """What a halving search is asked to do.

    Attributes:
        arms: Unique names of the candidate models, in pool order.
        train_rows: Rows in the training set.
        chunk: ``CHUNK``: rows per pull, or ``"auto"``.
        budget: ``BUDGET``: pulls in all, or ``"auto"``.
        eta: Halving factor (2 keeps the better half).
        test_rows: Rows in the test set (``None``: unknown, every round scores on all).
        racing: Score rounds before the last on test prefixes and keep the arms within
            the confidence margin of the cut (``False``: plain halving).
        delta: Racing's bound on the probability that a round eliminates its best arm.
        test_min_rows: Racing's smallest test prefix.
    """

    arms: tuple[str, ...]
    train_rows: int
    chunk: ChunkSetting = AUTO
    budget: BudgetSetting = AUTO
    eta: int = 2
    test_rows: int | None = None
    racing: bool = True
    delta: float = DEFAULT_DELTA
    test_min_rows: int = DEFAULT_TEST_MIN_ROWS

    def __post_init__(self) -> None:
        arms = self.arms
        if isinstance(arms, str) or not isinstance(arms, list | tuple):
            raise SchedulerError(f"arms must be a list of model names, got {arms!r}")
        if not arms:
            raise SchedulerError(
                "successive halving needs at least one model, got none; "
                "widen the pool or its WHERE condition"
            )
        seen: set[str] = set()
        for arm in arms:
            if not isinstance(arm, str) or not arm:
                raise SchedulerError(f"a model name must be a non-empty string, got {arm!r}")
            if arm in seen:
                raise SchedulerError(f"model {arm!r} is listed twice; list each model once")
            seen.add(arm)
        object.__setattr__(self, "arms", tuple(arms))
        for name in ("chunk", "budget"):
            value = getattr(self, name)
            if isinstance(value, str) and value.strip().lower() == AUTO:
                object.__setattr__(self, name, AUTO)
        if not isinstance(self.racing, bool):
            raise SchedulerError(f"racing must be true or false, got {self.racing!r}")
        object.__setattr__(self, "delta", _delta(self.delta))
        self.schedule()  # validates train_rows, test_rows, chunk, budget and eta

    def schedule(self) -> Schedule:
        """Return the resolved schedule (see :func:`plan_schedule`)."""
        return plan_schedule(
            len(self.arms),
            self.train_rows,
            self.chunk,
            self.budget,
            self.eta,
            self.test_rows,
            self.racing,
            self.test_min_rows,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form."""
        return {
            "arms": list(self.arms),
            "train_rows": self.train_rows,
            "chunk": self.chunk,
            "budget": self.budget,
            "eta": self.eta,
            "test_rows": self.test_rows,
            "racing": self.racing,
            "delta": self.delta,
            "test_min_rows": self.test_min_rows,
        }

    @classmethod
    def from_dict(cls, data: object) -> HalvingConfig:
        """Rebuild a config from :meth:`to_dict` output.

        Raises:
            SchedulerError: The data is not a valid config.
        """
        if not isinstance(data, dict):
            raise SchedulerError(f"a halving config must be an object, got {data!r}")
        names = ("arms", "train_rows", "chunk", "budget", "eta", "test_rows", "racing", "delta")
        missing = {*names, "test_min_rows"} - data.keys()
        if missing:
            raise SchedulerError(f"halving config lacks {', '.join(sorted(missing))}")
        return cls(
            data["arms"],
            data["train_rows"],
            data["chunk"],
            data["budget"],
            data["eta"],
            data["test_rows"],
            data["racing"],
            data["delta"],
            data["test_min_rows"],
        )


class HalvingStatus(StrEnum):
    """Whether a halving machine still needs evaluations."""

    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class Evaluation:
    """One proxy evaluation the machine needs: fit ``arm`` on the first ``train_rows`` rows.

    Attributes:
        arm: The model.
        round: The round the score belongs to.
        train_rows: Prefix of the training set to fit on.
        test_rows: Prefix of the test set to score on (``None``: the whole test set).
    """

    arm: str
    round: int
    train_rows: int
    test_rows: int | None = None


@dataclass(frozen=True)
class RoundDecided:
    """A round whose every loss is known.

    Attributes:
        round: The round.
        train_rows: Rows behind this round's scores.
        survivors: Arms promoted to the next round, best first (racing: the top by rank,
            then the arms kept within the margin); in the last round, all of its arms
            (the finalists), best first.
        eliminated: Arms that stop here, best first (empty in the last round).
    """

    round: int
    train_rows: int
    survivors: tuple[str, ...]
    eliminated: tuple[str, ...]


@dataclass(frozen=True)
class Update:
    """What changed after :meth:`SuccessiveHalving.record`.

    Attributes:
        requests: Evaluations that became needed (dispatch them).
        decided: Rounds that became fully decided.
        status: The machine's status afterwards.
        withdrawn: Evaluations asked for earlier that are no longer needed (racing's
            early promotions of arms the round's decision dropped); their results, when
            they come, are ignored.
    """

    requests: tuple[Evaluation, ...] = ()
    decided: tuple[RoundDecided, ...] = ()
    status: HalvingStatus = HalvingStatus.RUNNING
    withdrawn: tuple[Evaluation, ...] = ()


@dataclass(frozen=True)
class RankedArm:
    """One line of the final ranking.

    Attributes:
        arm: The model.
        loss: Its proxy loss in the last round it played.
        train_rows: Training rows that loss is based on.
        eliminated_in: Round it was eliminated in, ``None`` for a finalist.
        test_rows: Test rows that loss is based on (``None``: the whole test set).
    """

    arm: str
    loss: float
    train_rows: int
    eliminated_in: int | None
    test_rows: int | None = None


@dataclass(frozen=True)
class Score:
    """One recorded loss (EXPLAIN shows them per round after a run)."""

    arm: str
    round: int
    train_rows: int
    loss: float
    test_rows: int | None = None
    errors: int | None = None


@dataclass
class _RoundState:
    members: list[str] = field(default_factory=list)
    member_set: set[str] = field(default_factory=set)
    losses: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int | None] = field(default_factory=dict)
    ranked: list[tuple[float, str]] = field(default_factory=list)
    decided: RoundDecided | None = None
    walked: int = 0  # length of the ranked prefix already promoted as certain survivors
    last_insert: int | None = None  # where the latest loss went into `ranked`

    def add(self, arm: str) -> bool:
        """Add an arm; False when it is a member already."""
        if arm in self.member_set:
            return False
        self.members.append(arm)
        self.member_set.add(arm)
        return True

    def remove(self, arm: str) -> None:
        """Drop a member and its result (a withdrawn early request of an undecided round)."""
        self.members.remove(arm)
        self.member_set.discard(arm)
        self.losses.pop(arm, None)
        self.errors.pop(arm, None)
        self.ranked = [entry for entry in self.ranked if entry[1] != arm]


def _check_loss(arm: str, train_rows: int, loss: object) -> float:
    if isinstance(loss, int | float) and not isinstance(loss, bool):
        value = float(loss)
        if not math.isnan(value) and value != -math.inf:
            return value
    raise SchedulerError(
        f"the loss of {arm!r} on {train_rows} rows must be a number or +inf "
        f"(a failed evaluation), got {loss!r}"
    )


def _check_errors(arm: str, errors: object, rows: int | None) -> int | None:
    if errors is None:
        return None
    if (
        isinstance(errors, int)
        and not isinstance(errors, bool)
        and errors >= 0
        and (rows is None or errors <= rows)
    ):
        return errors
    limit = "" if rows is None else f" and at most {rows} (the test rows)"
    raise SchedulerError(
        f"the error count of {arm!r} must be a whole number >= 0{limit}, got {errors!r}"
    )


class SuccessiveHalving:
    """The successive-halving state machine of one search.

    Its whole state is the config and the recorded losses (with error counts). It asks for
    evaluations through :meth:`next_requests` and the ``requests`` of each :class:`Update`,
    including, as soon as they are certain, next-round evaluations of arms that survive
    whatever the missing losses turn out to be; every evaluation it asks for stays needed.

    Args:
        config: The search.
    """

    def __init__(self, config: HalvingConfig) -> None:
        self.config = config
        self.schedule = config.schedule()
        self._order = {arm: i for i, arm in enumerate(config.arms)}
        self._rounds = [_RoundState() for _ in self.schedule.rounds]
        for arm in config.arms:
            self._rounds[0].add(arm)
        self._log: list[list[Any]] = []  # every result in record order, to_dict's form
        self._withdrawn: set[tuple[str, int]] = set()  # (arm, round) no longer needed

    @property
    def status(self) -> HalvingStatus:
        """``DONE`` once the last round is decided."""
        done = self._rounds[-1].decided is not None
        return HalvingStatus.DONE if done else HalvingStatus.RUNNING

    def _evaluation(self, arm: str, k: int) -> Evaluation:
        plan = self.schedule.rounds[k]
        return Evaluation(arm, k, plan.train_rows, plan.test_rows)

    def _keeps_extra(self, k: int) -> bool:
        """Whether round ``k`` may keep arms below the cut (racing on a test prefix)."""
        return self.config.racing and self.schedule.sampled(k)

    def _size(self, k: int) -> int | None:
        """Arms that play round ``k``, when known (racing learns it when ``k - 1`` ends)."""
        if k == 0:
            return len(self.config.arms)
        before = self._rounds[k - 1].decided
        if before is not None:
            return len(before.survivors)
        if self._keeps_extra(k - 1):
            return None
        playing = self._size(k - 1)  # a round without margin keeps exactly its top
        return None if playing is None else _ceil_div(playing, self.schedule.eta)

    def round_arms(self, k: int) -> int:
        """Arms that play round ``k``: the actual count once known, else the planned one."""
        size = self._size(k)
        return self.schedule.rounds[k].arms if size is None else size

    def current_round(self) -> int:
        """The first round not yet decided (the last round once the search is done)."""
        for k, state in enumerate(self._rounds):
            if state.decided is None:
                return k
        return len(self._rounds) - 1

    def next_requests(self) -> list[Evaluation]:
        """Return every needed evaluation not yet recorded, by round then pool order.

        The machine does not know what is in flight: the caller dispatches each request
        once (the ``requests`` of an :class:`Update` are exactly the new ones).
        """
        out: list[Evaluation] = []
        for k, state in enumerate(self._rounds):
            waiting = [arm for arm in state.members if arm not in state.losses]
            waiting.sort(key=self._order.__getitem__)
            out.extend(self._evaluation(arm, k) for arm in waiting)
        return out

    def record(
        self,
        arm: str,
        train_rows: int,
        loss: float,
        errors: int | None = None,
        test_rows: int | None = None,
    ) -> Update:
        """Record the loss of ``arm`` fitted on the first ``train_rows`` rows.

        Recording the same result twice is a no-op (a re-delivered result).

        Args:
            arm: The model.
            train_rows: The evaluation's training prefix (names the round).
            loss: Its loss (``+inf``: the evaluation failed).
            errors: Misclassified test rows, which racing's confidence test needs
                (``None``: unknown; the arm is then never found confidently worse).
            test_rows: Test rows scored, checked against the round's when given.

        Returns:
            The evaluations that became needed and the rounds that became decided.

        Raises:
            SchedulerError: The evaluation was not asked for, the loss or error count is
                not valid, or it contradicts a result already recorded.
        """
        k = self.schedule.round_of(train_rows)
        plan = self.schedule.rounds[k]
        value = _check_loss(arm, train_rows, loss)
        state = self._rounds[k]
        if (arm, k) in self._withdrawn:
            return Update(status=self.status)
        if arm not in state.member_set:
            why = "is not a model of this search" if arm not in self._order else "was not asked"
            raise SchedulerError(
                f"{arm!r} {why} for an evaluation on {train_rows} rows (round {k}); "
                "record only evaluations from next_requests()"
            )
        if test_rows is not None and plan.test_rows is not None and test_rows != plan.test_rows:
            raise SchedulerError(
                f"{arm!r} was scored on {test_rows!r} test rows; round {k} scores on "
                f"{plan.test_rows}"
            )
        counted = _check_errors(arm, errors, plan.test_rows or test_rows)
        if arm in state.losses:
            if (state.losses[arm], state.errors[arm]) == (value, counted):
                return Update(status=self.status)
            counts = (
                ""
                if state.errors[arm] == counted
                else f" (with {state.errors[arm]!r} errors, not {counted!r})"
            )
            raise SchedulerError(
                f"{arm!r} on {train_rows} rows already has loss {state.losses[arm]!r}, "
                f"not {value!r}{counts}; a result must not change once recorded"
            )
        state.losses[arm] = value
        state.errors[arm] = counted
        self._log.append([arm, train_rows, value if math.isfinite(value) else "inf", counted])
        at = bisect.bisect_right(state.ranked, (value, arm))
        state.ranked.insert(at, (value, arm))
        state.last_insert = at
        requests, decided, withdrawn = self._settle(k)
        return Update(tuple(requests), tuple(decided), self.status, tuple(withdrawn))

    def _settle(self, k: int) -> tuple[list[Evaluation], list[RoundDecided], list[Evaluation]]:
        """Promote likely survivors of round ``k`` and decide it (and later ones) if complete.

        Returns the new requests, the decided rounds and the withdrawn requests.
        """
        requests: list[Evaluation] = []
        decided: list[RoundDecided] = []
        withdrawn: list[Evaluation] = []
        while k < len(self._rounds):
            size = self._size(k)
            state = self._rounds[k]
            if size is None or state.decided is not None:
                break
            last = k == len(self._rounds) - 1
            advancing = 0 if last else _ceil_div(size, self.schedule.eta)
            missing = size - len(state.losses)
            if advancing:
                # An arm is certain to survive by rank when fewer than `advancing` arms can
                # still beat it: the known better ones plus every loss still missing. Its
                # next evaluation is asked for at once. Racing asks only when it is not
                # confidently worse than the leader so far; a later, better leader may
                # still drop it, and the decision then withdraws the request.
                following = self._rounds[k + 1]
                leader = state.ranked[0][1] if state.ranked else None
                racing = leader is not None and self._keeps_extra(k)
                for arm in self._newly_certain(state, max(0, advancing - missing)):
                    if racing and self._worse(k, arm, str(leader), size):
                        continue
                    if following.add(arm):
                        requests.append(self._evaluation(arm, k + 1))
            if missing:
                break
            outcome = self._decide(k, size, advancing)
            state.decided = outcome
            decided.append(outcome)
            if last:
                break
            k = self._advance(k, outcome, requests, decided, withdrawn)
        return requests, decided, withdrawn

    def _advance(
        self,
        k: int,
        outcome: RoundDecided,
        requests: list[Evaluation],
        decided: list[RoundDecided],
        withdrawn: list[Evaluation],
    ) -> int:
        """Send round ``k``'s survivors on; return the next round to settle.

        Early requests of arms the decision dropped are withdrawn. A lone survivor has no
        one left to beat: it goes straight to the last round (the finalists' payload), and
        the rounds between are decided as passed through, without an evaluation. So the
        members of every round, and the outcome, do not depend on the order losses came in.
        """
        following = self._rounds[k + 1]
        last = len(self._rounds) - 1
        lone = len(outcome.survivors) == 1 and k + 1 < last
        keep = set() if lone else set(outcome.survivors)
        for arm in [a for a in following.members if a not in keep]:
            following.remove(arm)
            self._withdrawn.add((arm, k + 1))
            early = self._evaluation(arm, k + 1)
            if early in requests:  # asked for in this very update: not sent yet
                requests.remove(early)
            else:
                withdrawn.append(early)
        if not lone:
            for arm in outcome.survivors:
                if following.add(arm):
                    requests.append(self._evaluation(arm, k + 1))
            return k + 1
        arm = outcome.survivors[0]
        for j in range(k + 1, last):
            passed = RoundDecided(j, self.schedule.rounds[j].train_rows, (arm,), ())
            self._rounds[j].decided = passed
            decided.append(passed)
        self._rounds[last].add(arm)
        requests.append(self._evaluation(arm, last))
        return last

    @staticmethod
    def _newly_certain(state: _RoundState, certain: int) -> list[str]:
        """The arms of the first ``certain`` ranked places not promoted yet (maybe some).

        Each recorded loss grows the certain prefix by one place while it moves the earlier
        ones down by at most one, so the one new arm is the recorded one when it landed in
        the prefix, else the prefix's last; only a jump (a round whose size just became
        known) walks the prefix again. A loss therefore costs O(1) here, not O(arms).
        """
        if certain <= state.walked:
            fresh: list[str] = []
        elif certain == state.walked + 1 and state.last_insert is not None:
            at = state.last_insert
            fresh = [state.ranked[at if at < certain else certain - 1][1]]
        else:
            fresh = [arm for _, arm in state.ranked[:certain]]
        state.walked = max(state.walked, certain)
        state.last_insert = None
        return fresh

    def _decide(self, k: int, size: int, advancing: int) -> RoundDecided:
        state = self._rounds[k]
        ordered = [arm for _, arm in state.ranked]
        rows = self.schedule.rounds[k].train_rows
        if not advancing:
            return RoundDecided(k, rows, tuple(ordered), ())
        survivors, below = ordered[:advancing], ordered[advancing:]
        if not self._keeps_extra(k):
            return RoundDecided(k, rows, tuple(survivors), tuple(below))
        # Racing: an arm goes when it is confidently worse than the round's leader (even
        # within the top), or, below the cut, than the cut arm.
        leader, cut = ordered[0], survivors[-1]
        gone = {
            arm
            for i, arm in enumerate(ordered)
            if self._worse(k, arm, leader, size)
            or (i >= advancing and self._worse(k, arm, cut, size))
        }
        kept = tuple(arm for arm in ordered if arm not in gone)
        return RoundDecided(k, rows, kept, tuple(arm for arm in ordered if arm in gone))

    def _worse(self, k: int, arm: str, other: str, size: int) -> bool:
        """Whether ``arm`` is confidently worse than ``other`` (the round's leader or its cut
        arm) on round ``k``'s test rows.

        Each of the ``size`` arms' bounds is taken at level ``delta / size``, so the arm
        with the lowest error on the whole test set is eliminated with probability at most
        ``delta`` (docs/halving.md).
        """
        state = self._rounds[k]
        loss, other_loss = state.losses[arm], state.losses[other]
        if math.isinf(loss) or math.isinf(other_loss):
            return math.isinf(loss) and not math.isinf(other_loss)
        errors, other_errors = state.errors[arm], state.errors[other]
        rows = self.schedule.rounds[k].test_rows
        if errors is None or other_errors is None or rows is None:
            return False
        return confidently_worse(errors, other_errors, rows, self.config.delta / size)

    def scores(self) -> list[Score]:
        """Return every recorded loss, by round then pool order."""
        out: list[Score] = []
        for plan, state in zip(self.schedule.rounds, self._rounds, strict=True):
            for arm in sorted(state.losses, key=self._order.__getitem__):
                out.append(
                    Score(
                        arm,
                        plan.index,
                        plan.train_rows,
                        state.losses[arm],
                        plan.test_rows,
                        state.errors[arm],
                    )
                )
        return out

    def ranking(self) -> list[RankedArm]:
        """Return the final ranking: finalists by loss, then later eliminations first.

        Raises:
            SchedulerError: The search is not finished.
        """
        if self.status is not HalvingStatus.DONE:
            missing = len(self.next_requests())
            raise SchedulerError(
                f"successive halving is not finished: {missing} evaluations are missing"
            )
        out: list[RankedArm] = []
        for plan, state in zip(reversed(self.schedule.rounds), reversed(self._rounds), strict=True):
            outcome = state.decided
            if outcome is None:  # pragma: no cover - DONE means every round was decided
                continue
            group = outcome.eliminated if plan.advancing else outcome.survivors
            eliminated = None if plan.advancing == 0 else plan.index
            out.extend(
                RankedArm(arm, state.losses[arm], plan.train_rows, eliminated, plan.test_rows)
                for arm in group
            )
        return out

    @property
    def recorded(self) -> int:
        """How many results the machine holds."""
        return len(self._log)

    def results_since(self, count: int) -> list[list[Any]]:
        """The results recorded after the first ``count``, in record order and in the form
        of :meth:`to_dict`'s ``results``: what a store appends to a state it saved when the
        machine held ``count`` results, so persisting a transition costs only its new
        results (the loaded state is the saved one plus these, which :meth:`from_dict`
        replays in this order)."""
        return [list(result) for result in self._log[count:]]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able state: the config, the resolved plan and every result, in
        record order."""
        results = self.results_since(0)
        return {
            "kind": _STATE_KIND,
            "version": STATE_VERSION,
            "config": self.config.to_dict(),
            "chunk_rows": self.schedule.chunk_rows,
            "budget_pulls": self.schedule.budget_pulls,
            "results": results,
        }

    def to_json(self) -> str:
        """Return :meth:`to_dict` as JSON text (strict JSON: +inf is written ``"inf"``)."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: object) -> SuccessiveHalving:
        """Rebuild a machine from :meth:`to_dict` output by replaying its results.

        Raises:
            SchedulerError: The state is malformed, of another version (the broker drops
                such a state and starts the search again), planned differently by this
                version of shift, or holds an impossible result.
        """
        if not isinstance(data, dict) or data.get("kind") != _STATE_KIND:
            raise SchedulerError("cannot restore successive halving: not a halving state")
        if data.get("version") != STATE_VERSION:
            raise SchedulerError(
                f"cannot restore successive halving state version {data.get('version')!r}; "
                f"this shift reads version {STATE_VERSION}"
            )
        machine = cls(HalvingConfig.from_dict(data.get("config")))
        plan = machine.schedule
        if (data.get("chunk_rows"), data.get("budget_pulls")) != (
            plan.chunk_rows,
            plan.budget_pulls,
        ):
            raise SchedulerError(
                f"cannot restore successive halving: it was planned with CHUNK "
                f"{data.get('chunk_rows')!r} and BUDGET {data.get('budget_pulls')!r}, this shift "
                f"plans CHUNK {plan.chunk_rows} and BUDGET {plan.budget_pulls}; rerun the query"
            )
        results = data.get("results")
        if not isinstance(results, list):
            raise SchedulerError("cannot restore successive halving: results must be a list")
        rows_by_round = {plan.train_rows: plan.index for plan in machine.schedule.rounds}
        checked: list[tuple[int, str, int, float, Any]] = []
        for item in results:
            if not (
                isinstance(item, list)
                and len(item) == 4
                and isinstance(item[0], str)
                and item[1] in rows_by_round
            ):
                raise SchedulerError(f"cannot restore successive halving: bad result {item!r}")
            loss = _check_loss(item[0], item[1], math.inf if item[2] == "inf" else item[2])
            checked.append((rows_by_round[item[1]], item[0], item[1], loss, item[3]))
        # Replaying in record order asks for every evaluation again before its result
        # (racing's early promotions depend on the leader when each loss came in).
        for _, arm, rows, loss, errors in checked:
            machine.record(arm, rows, loss, errors)
        return machine

    @classmethod
    def from_json(cls, text: str) -> SuccessiveHalving:
        """Rebuild a machine from :meth:`to_json` text.

        Raises:
            SchedulerError: The text is not a valid halving state.
        """
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as error:
            raise SchedulerError(f"cannot restore successive halving: {error}") from error
        return cls.from_dict(data)
