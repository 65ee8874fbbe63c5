"""Progressive cutover of a route: a plan in routing.yaml, an analysis that compares the
new backend with the monolith on the same route in the same window, data gates, and a
controller whose state survives ``kill -9``.

    plan.py        the ``rollout:`` block as immutable data
    stats.py       anytime-valid sequential tests and confidence sequences
    analysis.py    windows of counts → verdicts (pass / fail / inconclusive / provider error)
    providers.py   where counts come from: the facade, Prometheus, CloudWatch
    gates.py       the data gates: sync lag, dead letters, conflicts, sampled verify
    state.py       the durable state file, the lease, the command queue
    controller.py  the loop that walks the steps
    cli.py         ``strangler rollout``
"""
