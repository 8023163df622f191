"""The pure metering core: caps, pools, windows (S5, S6, L4, L7, L8, A1, A2, A3, A6)."""

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from farebox.catalog.domain import Interval, Limit, MeterKind, Plan, Policy
from farebox.kernel.money import Money
from farebox.metering.domain.admission import Decision, Mode, check_cap, deadline_for, past_deadline, upgrade_required
from farebox.metering.domain.conversations import Sender, Window, billable_sessions, on_message
from farebox.metering.domain.pools import carried_forward, overage, pool_rule, session_warnings, validate_session_limit

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
H = timedelta(hours=1)


def _plan(limit: Limit, **kw) -> Plan:
    return Plan(
        code="p",
        name="P",
        price=kw.pop("price", Money(15000, "EUR")),
        interval=Interval.MONTH,
        tier=1,
        limits=(limit,),
        **kw,
    )


def test_A1_seed_36_hours_is_two_billable_sessions():
    messages = [(T0 + n * 6 * H, Sender.CUSTOMER) for n in range(7)]  # 0 h .. 36 h
    assert billable_sessions(messages) == 2


def test_A1_window_is_rolling_not_calendar():
    late = datetime(2026, 1, 5, 23, 30, tzinfo=timezone.utc)
    assert billable_sessions([(late, Sender.CUSTOMER), (late + 2 * H, Sender.CUSTOMER)]) == 1


def test_A2_outbound_only_window_is_free_and_a_reply_bills_it_once():
    assert billable_sessions([(T0, Sender.AGENT), (T0 + H, Sender.AGENT)], answered_only=True) == 0
    assert (
        billable_sessions(
            [(T0, Sender.AGENT), (T0 + H, Sender.CUSTOMER), (T0 + 2 * H, Sender.CUSTOMER)], answered_only=True
        )
        == 1
    )
    effect = on_message(None, T0, Sender.AGENT, length=24 * H, answered_only=True)
    assert effect.opens and not effect.bills


def test_A1_G4_a_message_decided_after_the_window_it_predates_joins_that_window():
    """Two processes: the one stamped later took the conversation's lock first and opened
    the window; the earlier-stamped message is decided after it and must not open a second."""
    opened = on_message(None, T0 + timedelta(milliseconds=3), Sender.CUSTOMER, length=24 * H, answered_only=False)
    late = on_message(opened.window, T0, Sender.CUSTOMER, length=24 * H, answered_only=False)
    assert (late.opens, late.bills, late.window) == (False, False, opened.window)
    long_before = on_message(opened.window, T0 - 25 * H, Sender.CUSTOMER, length=24 * H, answered_only=False)
    assert long_before.opens and long_before.bills


def test_A1_a_message_a_window_or_more_before_the_open_one_keeps_the_open_one_current():
    """A late event from days before opens and bills its own window; the conversation's current window stays the
    open one, so a message inside it is not billed again."""
    opened = on_message(None, T0, Sender.CUSTOMER, length=24 * H, answered_only=False)
    for before in (24 * H, 72 * H):
        late = on_message(opened.window, T0 - before, Sender.CUSTOMER, length=24 * H, answered_only=False)
        assert (late.opens, late.bills, late.window) == (True, True, opened.window)
        inside = on_message(late.window, T0 + H, Sender.CUSTOMER, length=24 * H, answered_only=False)
        assert (inside.opens, inside.bills) == (False, False)


@given(st.lists(st.integers(min_value=0, max_value=24 * 30), min_size=1, max_size=40))
def test_A1_property_windows_start_at_least_24_hours_apart(hours):
    messages = [(T0 + h * H, Sender.CUSTOMER) for h in hours]
    n = billable_sessions(messages)
    span = max(hours) - min(hours)
    assert 1 <= n <= min(len(set(hours)) if span else 1, span // 24 + 1)


def test_S5_caps_by_policy():
    assert check_cap(1, 2, Policy.HARD).allowed
    assert not check_cap(2, 2, Policy.HARD).allowed
    soft = check_cap(2, 2, Policy.SOFT)
    assert soft.allowed and soft.over
    assert not check_cap(2, 2, Policy.HARD_WITH_WAITING_ROOM).allowed
    assert check_cap(10**6, None, Policy.HARD).allowed


def test_S5_upgrade_required_until_cap_covers_peak():
    assert upgrade_required(501, 500)
    assert not upgrade_required(501, 1000)
    assert not upgrade_required(None, 500)


def test_S6_deadline_from_first_entry():
    assert deadline_for(T0, timedelta(minutes=90)) == T0 + timedelta(minutes=90)
    assert deadline_for(T0, None) is None
    assert past_deadline(T0, T0) and not past_deadline(None, T0)
    assert Mode.LIVE.is_live and not Mode.REPLAY.is_live


def test_L7_hard_pool_stops_L8_overage_goes_on():
    hard = _plan(Limit("credits", 10, Policy.HARD))
    rule = pool_rule(hard, hard.limits[0], MeterKind.ATTENDEES, carried_in=2)
    assert rule.cap == 12 and rule.reason.code == "credits_exhausted"
    over = _plan(Limit("credits", 10, Policy.OVERAGE, Money(80, "USD")))
    rule = pool_rule(over, over.limits[0], MeterKind.ATTENDEES)
    assert rule.cap is None and rule.reason is None
    assert overage(15, 10) == 5 and overage(5, 10) == 0 and overage(5, None) == 0


def test_L4_carried_forward_is_what_is_left():
    assert carried_forward(1200, 0, 1000) == 200
    assert carried_forward(1200, 50, 1300) == 0


def test_A3_trial_bound_is_the_pool():
    plan = _plan(Limit("sessions", 600, Policy.OVERAGE, Money(50, "EUR"), customer_limit=True))
    rule = pool_rule(plan, plan.limits[0], MeterKind.BILLABLE_SESSIONS, trial_bound=50)
    assert rule.cap == 50 and rule.reason.code == "trial_exhausted"


def test_A6_customer_limit_stops_and_warns_at_80_and_100():
    plan = _plan(Limit("sessions", 600, Policy.OVERAGE, Money(50, "EUR"), customer_limit=True))
    rule = pool_rule(plan, plan.limits[0], MeterKind.BILLABLE_SESSIONS, customer_limit=10)
    assert rule.cap == 10 and rule.reason.code == "session_limit_reached"
    assert session_warnings(7, rule, MeterKind.BILLABLE_SESSIONS) == ()
    almost, reached = (
        session_warnings(8, rule, MeterKind.BILLABLE_SESSIONS),
        session_warnings(10, rule, MeterKind.BILLABLE_SESSIONS),
    )
    assert [(w.code, w.text) for w in almost] == [
        ("session_limit_almost_reached", "Session limit almost reached")
    ]  # G15
    assert [(w.code, w.text) for w in reached] == [("session_limit_now_reached", "Session limit has been reached")]


def test_A6_limit_validation():
    paid = _plan(Limit("sessions", 600, Policy.OVERAGE, Money(50, "EUR"), customer_limit=True))
    assert validate_session_limit(paid, paid.limits[0], 0).code == "session_limit_invalid"
    assert validate_session_limit(paid, paid.limits[0], 5000) is None  # overage priced: above base allowed
    hard = _plan(Limit("sessions", 600, Policy.HARD, customer_limit=True))
    assert validate_session_limit(hard, hard.limits[0], 601).code == "session_limit_above_base"
    free = _plan(Limit("sessions", 300, Policy.HARD, customer_limit=True), price=Money(0, "EUR"))
    assert validate_session_limit(free, free.limits[0], 10).code == "session_limit_not_available"


def test_decision_round_trips_as_dict():
    d = Decision(True, True, "admitted", "Admitted.", ("w",), None, T0)
    assert Decision.from_dict(d.as_dict()) == d


def test_A1_a_replay_of_late_messages_is_counted_window_by_window():
    """Windows W1 (T0) and W2 (T0 + 30 h, open) were counted; lost messages replayed late fall in W1 and are not
    counted again; older ones, in time order, open one window and the rest of them fall in it."""
    length = 24 * H
    w1 = on_message(None, T0, Sender.CUSTOMER, length=length, answered_only=False)
    w2 = on_message(w1.window, T0 + 30 * H, Sender.CUSTOMER, length=length, answered_only=False)
    assert (w2.opens, w2.bills, w2.earlier) == (True, True, w1.window)
    current, earlier, billed = w2.window, w2.earlier, 0
    for at in (T0 + H, T0 + 5 * H, T0 - 50 * H, T0 - 49 * H, T0 - 30 * H):
        effect = on_message(current, at, Sender.CUSTOMER, length=length, answered_only=False, earlier=earlier)
        assert effect.window == current
        earlier, billed = effect.earlier, billed + effect.bills
    assert billed == 1  # T0 - 50 h opens a window; T0 - 49 h and T0 - 30 h are in it
    assert earlier is not None and earlier.started_at == T0 - 50 * H


def test_A1_a_late_message_less_than_a_window_before_the_open_one_starts_it_and_may_split_it():
    """Messages at T0 and T0 + 20 h made one window; one at T0 - 23 h sent late starts a window that holds T0, and
    T0 + 20 h starts the next: 2 windows, as the three in time order make, the second billed now."""
    length = 24 * H
    opened = on_message(None, T0, Sender.CUSTOMER, length=length, answered_only=False)
    late = on_message(opened.window, T0 - 23 * H, Sender.CUSTOMER, length=length, answered_only=False,
                      last=T0 + 20 * H)
    assert (late.opens, late.bills) == (True, True)
    assert late.earlier == Window(T0 - 23 * H, T0 + H, True)
    assert late.window.started_at == T0 + 20 * H
    assert billable_sessions([(T0 + h * H, Sender.CUSTOMER) for h in (-23, 0, 20)]) == 2
    # a moment before, with nothing after the window it starts: the open window moves back, nothing more is billed
    race = on_message(opened.window, T0 - 3 * H, Sender.CUSTOMER, length=length, answered_only=False, last=T0)
    assert (race.opens, race.bills, race.window) == (False, False, Window(T0 - 3 * H, T0 + 21 * H, True))
