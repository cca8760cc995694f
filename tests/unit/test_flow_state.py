"""FlowState's moves (enter, advance, leave): the position changes, each flow's answers are
replaced whole and kept after leaving, and every move counts in `version`."""

from __future__ import annotations

from storage.models import FlowState


def _state() -> FlowState:
    return FlowState(candidate_id=1, answers={"eligibility": {"level": "junior"}}, version=0)


def test_enter_then_advance_saves_answers_of_that_flow_only() -> None:
    state = _state()

    state.enter("registration", answers={"level": "senior"})
    state.advance("email", answers={"level": "senior", "direction": "x"})

    assert (state.flow, state.step, state.answers, state.version) == (
        "registration",
        "email",
        {
            "eligibility": {"level": "junior"},
            "registration": {"level": "senior", "direction": "x"},
        },
        2,
    )


def test_leave_keeps_answers_and_replaces_them_when_given() -> None:
    state = _state()
    state.enter("registration", "summary", answers={"level": "senior", "session": "S1"})

    state.leave(answers={"level": "senior"})

    assert (state.flow, state.step, state.answers_of("registration"), state.version) == (
        None,
        None,
        {"level": "senior"},
        2,
    )


def test_answers_of_is_a_copy_and_of_an_unknown_flow_is_empty() -> None:
    state = _state()

    state.answers_of("eligibility")["level"] = "senior"

    assert (state.answers_of("eligibility"), state.answers_of("broadcast")) == (
        {"level": "junior"},
        {},
    )
